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

import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .batch import Inputs, first_tensor
from .costs import sync_device, time_summary
from .data import Split
from .models import MultiExitNetwork, select_samples
from .schedulers import ExitScheduler

__all__ = ["adaptive_forward", "run_split", "time_per_sample"]


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


@torch.inference_mode()
def time_per_sample(
    run: Callable[[object], object], batches: Sequence, device: torch.device, warmup: int = 1, repeats: int = 5
) -> dict[str, float]:
    """Wall-clock ms per sample of ``run(batch)`` over every batch of ``batches`` (a pass), after ``warmup`` passes.

    Returns the median and quartiles over ``repeats`` passes: ``ms``, ``ms_q1``, ``ms_q3``. CUDA is synchronised
    around each pass (the runtime synchronises at every exit anyway: how many samples leave decides what follows).
    """
    n = sum(first_tensor(b).shape[0] for b in batches)
    for _ in range(warmup):
        for b in batches:
            run(b)
    times = []
    for _ in range(repeats):
        sync_device(device)
        t0 = time.perf_counter()
        for b in batches:
            run(b)
        sync_device(device)
        times.append((time.perf_counter() - t0) * 1000.0 / n)
    return time_summary(times)
