"""Inference that really exits: run a batch through a multi-exit network and let samples leave at their exit.

After each exit the scheduler decides, from the probabilities of the exits computed so far, which of the
samples still running leave there; those are removed from the batch (their predictions and exit indices
recorded) and only the rest go through the next stage. No compute is spent on a sample after it left.
The decisions are those of :meth:`eenet.schedulers.ExitScheduler.assign` on the same probabilities: a
threshold policy's decision at exit ``k`` reads exits ``0..k`` only.

    model, _ = load_model("results/fashion_mnist/model.pt")
    sched = scheduler_from_json(read_json("results/fashion_mnist/schedulers/maxpred/0.5.json"))
    preds, exits = adaptive_forward(model, sched, batch)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F

from .batch import Inputs, first_tensor
from .costs import time_per_sample
from .data import Split
from .models import MultiExitNetwork, select_samples
from .schedulers import ExitScheduler, realised_cost

__all__ = ["adaptive_forward", "run_split", "measure_policies", "compare_to_simulation", "RUNTIME_FIELDS"]

RUNTIME_FIELDS = [
    "bench", "method", "budget_value", "budget_ms", "batch_size", "samples", "measured_ms", "measured_q1", "measured_q3",
    "simulated_ms", "measured_vs_simulated", "full_ms", "speedup_vs_full", "accuracy", "exits_agree", "preds_agree",
    "exit_histogram", "threads", "device", "torch_version",
]  # fmt: skip
"""Columns of runtime.csv (rule measure_runtime): one row per policy and batch size; times in ms per sample."""


@torch.inference_mode()
def adaptive_forward(model: MultiExitNetwork, sched: ExitScheduler, x: Inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions and exit indices (``int64 [B]`` each, on the inputs' device) of a batch ``x`` under ``sched``."""
    if sched.requires_labels:
        raise ValueError(f"the {sched.method} policy looks at the labels: it cannot run as inference")
    if sched.num_exits_ != model.num_exits:
        raise ValueError(f"{sched.method} scheduler was fitted for {sched.num_exits_} exits, the model has {model.num_exits}")
    ref = first_tensor(x)
    b = ref.shape[0]
    last = model.num_exits - 1
    state = model.begin(x)
    seen: list[torch.Tensor] = []  # probabilities of exits 0..k of the samples still running, [n, C] each
    if b == 1:  # one sample: no bookkeeping of who is left, one Python decision per exit
        for k in range(model.num_exits):
            state, logits = model.step(k, state)
            seen.append(F.softmax(logits.float(), dim=1))
            if k == last or sched.leaves_one(k, seen):
                return seen[-1].argmax(dim=1), torch.tensor([k], device=ref.device)
    rows = torch.arange(b, device=ref.device)
    preds = torch.empty(b, dtype=torch.long, device=ref.device)
    exits = torch.empty(b, dtype=torch.long, device=ref.device)
    for k in range(model.num_exits):
        state, logits = model.step(k, state)
        probs = F.softmax(logits.float(), dim=1)
        seen.append(probs)
        leave = torch.ones(probs.shape[0], dtype=torch.bool, device=probs.device) if k == last else sched.leaves(k, seen)
        n_leave = int(leave.sum())
        if n_leave:
            preds[rows[leave]] = probs[leave].argmax(dim=1)
            exits[rows[leave]] = k
        if n_leave == probs.shape[0]:
            break
        if n_leave:
            keep = ~leave
            state = select_samples(state, keep)
            seen = [p[keep] for p in seen]
            rows = rows[keep]
    return preds, exits


def run_split(
    model: MultiExitNetwork, sched: ExitScheduler, split: Split, batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`adaptive_forward` over a whole split (test-time inputs): predictions and exits ``int64 [N]``, on the CPU."""
    preds, exits = [], []
    for x, _ in split.batches(batch_size, device):
        p, e = adaptive_forward(model, sched, x)
        preds.append(p.cpu())
        exits.append(e.cpu())
    return torch.cat(preds), torch.cat(exits)


def measure_policies(
    model: MultiExitNetwork,
    policies: Mapping[str, ExitScheduler],
    batches: Sequence[Inputs],
    device: torch.device,
    warmup: int = 1,
    repeats: int = 5,
    chunk: int = 10,
) -> dict[str, dict[str, Any]]:
    """Run every policy's adaptive inference over ``batches`` and time it beside the full model.

    Returns, per policy name, ``preds`` and ``exits`` (``int64 [N]``, CPU, from one untimed pass) and the
    timing of :func:`eenet.costs.time_per_sample` (``ms``, ``ms_q1``, ``ms_q3``; ``chunk`` batches at a time);
    under the name ``"full"``, the timing of ``model(x)`` (every stage and head: the network without early exit).
    """
    model.eval()
    out: dict[str, dict[str, Any]] = {}
    for name, sched in policies.items():
        preds, exits = zip(*(adaptive_forward(model, sched, b) for b in batches), strict=True)
        out[name] = {"preds": torch.cat(preds).cpu(), "exits": torch.cat(exits).cpu()}
    runs: dict[str, Callable[[Any], object]] = {"full": model}
    runs.update({name: partial(adaptive_forward, model, sched) for name, sched in policies.items()})
    timing = time_per_sample(runs, batches, device, warmup, repeats, chunk)
    for name, t in timing.items():
        out.setdefault(name, {}).update(t)
    return out


def compare_to_simulation(
    result: Mapping[str, Any], full: Mapping[str, float], costs_ms: Sequence[float], num_exits: int
) -> dict[str, Any]:
    """Measured against simulated for one policy of :func:`measure_policies`: its ``result`` and the ``full`` model's.

    ``simulated_ms`` is the cost model's prediction for the same samples: the runtime's own exit histogram
    times the per-exit costs ``costs_ms [K]`` (cost.csv). Returns that, the measured median and quartiles,
    ``full_ms``, ``measured_vs_simulated``, ``speedup_vs_full`` and the ``exit_histogram`` (``K`` counts, as JSON text).
    """
    exits = result["exits"]
    simulated = realised_cost(exits, torch.tensor(costs_ms, dtype=torch.float64))
    return {
        "simulated_ms": simulated,
        "measured_ms": result["ms"],
        "measured_q1": result["ms_q1"],
        "measured_q3": result["ms_q3"],
        "full_ms": full["ms"],
        "measured_vs_simulated": result["ms"] / simulated,
        "speedup_vs_full": full["ms"] / result["ms"],
        "exit_histogram": json.dumps(torch.bincount(exits, minlength=num_exits).tolist()),
    }
