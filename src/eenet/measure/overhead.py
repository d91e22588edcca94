"""A policy's own decision work at each exit, in ms per sample at cost.csv's batch size: what cost.csv leaves out.

cost.csv (:func:`eenet.measure.costs.run_to_exit`) times every exit with a softmax and a max read back to the host:
the work of the cheapest policy. The runtime's batch-1 loop (:func:`eenet.measure.runtime.adaptive_forward`) does,
at every exit ``k`` it passes, the policy's :meth:`~eenet.schedulers.ExitScheduler.exit_outputs` (a softmax, or a
combiner's step over the logits of exits ``0..k``) and :meth:`~eenet.schedulers.ExitScheduler.leaves_one` (a
threshold, PABEE's count, EENet's utilities). :func:`decision_overhead` times that work on cached outputs of single
validation samples, beside the baseline cost.csv already holds, and returns the difference per exit;
:func:`effective_costs` adds it to cost.csv's costs, cumulatively (a sample leaving at ``k`` paid the decisions at
``0..k``): what :func:`eenet.schedulers.fit_budgets` fits every budget against when given an ``overhead``.

    overhead = partial(decision_overhead, logits=val["logits"], probs=val["probs"])
    fitted = fit_budgets("ztw_ens+maxpred", {}, val["probs"], val["logits"], val["labels"], costs_ms, budgets, overhead=overhead)
    fitted[0].decision_ms_, fitted[0].costs_   # the overhead measured, the effective costs fitted against
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch

from eenet.schedulers import ExitScheduler, StaticScheduler, effective_costs

__all__ = ["decision_overhead", "effective_costs", "decides_nothing", "same_run_check", "network_stages", "EVICT_BYTES"]

EVICT_BYTES = 8 << 20
"""Bytes touched before every timed decision: more than a core's L2 cache on most CPUs, as a network stage's weights
and activations push the decision's code and data out of it (on a 2-core Xeon with 2 MiB of L2 a core, a decision
timed this way matched the runtime's within a few µs; timed warm, it was 30-100 µs short for PABEE and EENet)."""


def decides_nothing(policy: ExitScheduler) -> bool:
    """A policy with no decision work to count: the oracle (it reads the labels: it cannot run) and a single exit
    (:class:`~eenet.schedulers.StaticScheduler`: it decides nothing)."""
    return policy.requires_labels or type(policy) is StaticScheduler


@torch.inference_mode()
def network_stages(model: Any, x: Any) -> Callable[[int], object]:
    """What the runtime runs right before its decision at exit ``k``, for :func:`decision_overhead`'s ``stage``: stage
    ``k`` of ``model`` (a :class:`~eenet.models.MultiExitNetwork`) and its head, on the inputs ``x`` (a batch of
    cost.csv's size). The states entering every stage are computed here once; each call runs one stage (~ what a
    stage does to the caches, its code, weights and activations, before the runtime decides)."""
    states = [model.begin(x)]
    for k in range(model.num_exits - 1):
        states.append(model.step(k, states[k])[0])

    @torch.inference_mode()
    def stage(k: int) -> object:
        return model.step(k, states[k])

    return stage


def _policy_step(policy: ExitScheduler, k: int, last: int, s: dict[str, Any]) -> None:
    """The runtime's work at exit ``k`` (:func:`eenet.measure.runtime.adaptive_forward`) for the batch ``s``: at batch 1
    ``leaves_one``, else ``leaves`` (its batched path)."""
    raw = s["raw"][: k + 1]
    seen = s["seen"][:k]
    if policy.needs_logits:  # the combiner's incremental step: exit k's state, then the combination of 0..k
        states = s["states"][:k]
        states.append(policy.exit_state(k, raw[-1]))
        seen.append(policy.outputs_from_states(k, states, raw[-1]))
    else:
        seen.append(policy.exit_outputs(k, (raw[-1],)))
    if k < last:
        if raw[-1].shape[0] == 1:
            policy.leaves_one(k, seen)
        else:
            policy.leaves(k, seen)


def _baseline_step(k: int, last: int, s: dict[str, Any]) -> None:
    """What cost.csv already holds at exit ``k`` (:func:`eenet.measure.costs.run_to_exit`): the softmax, and at an exit
    before the last the max read back to the host; the same list bookkeeping as :func:`_policy_step`."""
    raw = s["raw"][: k + 1]
    seen = s["seen"][:k]
    probs = torch.softmax(raw[-1].float(), dim=1)
    seen.append(probs)
    if k < last:
        float(probs.max())


@torch.inference_mode()
def decision_overhead(
    policy: ExitScheduler,
    logits: torch.Tensor | None,
    probs: torch.Tensor,
    repeats: int = 5,
    samples: int = 40,
    warmup: int = 1,
    seed: int = 0,
    evict_bytes: int = EVICT_BYTES,
    batch_size: int = 1,
    *,
    clock: Callable[[], float] = time.perf_counter,
    stage: Callable[[int], object] | None = None,
) -> list[float]:
    """ms per sample ``[K]`` of a fitted ``policy``'s own work at each exit (at ``batch_size``), beyond cost.csv's (>= 0).

    At exit ``k``: the time of the runtime's ``exit_state(k, logits[k])`` and ``outputs_from_states`` (a combined
    policy's incremental step; else ``exit_outputs``) ``+ leaves_one(k, seen)`` (the outputs alone at the
    last exit, where the runtime asks nothing) minus that of the softmax and host-read max cost.csv times there, on
    ``samples`` single samples of the cached validation outputs (a seeded random draw; ``logits`` / ``probs``
    ``[K, N, C]``; without raw logits, ``log(probs)``, whose softmax is ``probs``), exit after exit as the runtime
    goes. In the runtime a decision runs right after a network stage has pushed it out of the caches, which makes
    it several times slower than in a tight loop: every timed call follows the touch of a buffer of ``evict_bytes``
    (:data:`EVICT_BYTES`; 0: warm caches), untimed; better, given ``stage`` (:func:`network_stages` of the model),
    the network's own stage ``k`` runs untimed before every timed call at exit ``k``, in place of the buffer: a buffer
    of a fixed size over-counts the decisions after a small network's stages (8 MiB: a 6-exit ResNet of width 8 with
    pool + linear heads, 0.02-0.09 ms over the runtime's loop at exit 5; 2 MiB matched it) and under-counts after a
    large one's (the 3-exit demo network with three-conv heads: 8 MiB matched, 2 MiB was 0.02-0.05 ms short).
    After ``warmup`` untimed passes, every call is timed ``repeats``
    times, the policy's and the baseline's interleaved call by call; the medians over the calls of each exit are
    compared (a burst of load from another process is left out). About ``(warmup + repeats) x samples x 2K`` calls
    and evictions (~0.4 ms each on a 2-core Xeon): ~1-2 s at the defaults. The oracle and a single exit
    (:func:`decides_nothing`) get zeros, untimed. ``batch_size``: cost.csv's (its costs are per sample at that batch
    size): the calls then take batches of that many samples (``leaves``, the runtime's batched path) and the
    difference is divided by it, so that it adds to cost.csv's costs in the same unit. ``clock``: the timer read
    before and after every timed call, in seconds (:func:`time.perf_counter`; a test passes a clock of its own).
    """
    k_exits, n = probs.shape[0], probs.shape[1]
    if decides_nothing(policy) or n == 0:
        return [0.0] * k_exits
    z = probs.float().clamp_min(1e-30).log() if logits is None else logits.float()
    if z.shape[:2] != probs.shape[:2]:
        raise ValueError(f"logits {tuple(z.shape)} and probs {tuple(probs.shape)} are not of the same exits and samples")
    b = max(1, min(int(batch_size), n))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    data = []
    for i in range(max(1, min(samples, n) // b)):
        rows = order[i * b : (i + 1) * b].sort().values
        raw = [z[j, rows].clone() for j in range(k_exits)]  # a fresh [b, C] tensor per exit, as a head gives
        states = [policy.exit_state(j, raw[j]) for j in range(k_exits)]
        seen = [policy.outputs_from_states(j, states[: j + 1], raw[j]) for j in range(k_exits)]
        data.append({"raw": raw, "states": states, "seen": seen})
    last = k_exits - 1
    steps = [(partial(_policy_step, policy, k, last), partial(_baseline_step, k, last)) for k in range(k_exits)]
    buffer = torch.zeros(max(evict_bytes // 4, 1) if stage is None else 1)
    times: list[tuple[list[float], list[float]]] = [([], []) for _ in range(k_exits)]
    for r in range(warmup + repeats):
        for s in data:
            for k, pair in enumerate(steps):
                for fn, out in zip(pair, times[k], strict=True):
                    if stage is not None:
                        stage(k)  # the network's stage k, as the runtime runs it right before deciding at exit k
                    elif evict_bytes:
                        buffer.add_(1.0)  # what a network stage does to the caches before the runtime decides
                    t0 = clock()
                    fn(s)
                    dt = clock() - t0
                    if r >= warmup:
                        out.append(dt)
    return [max(0.0, 1000.0 * (statistics.median(pol) - statistics.median(base)) / b) for pol, base in times]


def same_run_check(rows: list[dict[str, Any]], policies: dict[str, ExitScheduler], costs_ms: Sequence[float]) -> None:
    """The cost model checked against exits timed in the same run: adds ``same_run_simulated_ms`` and
    ``measured_vs_same_run`` to the batch-1 rows of :func:`eenet.measure.runtime.measure_runtime` (in place).

    cost.csv is timed by another job, at another time: on a shared machine the whole machine can be 20-30 % slower
    an hour later, the single exits as much as the policies, which no cost model can foresee. The runtime times every
    single exit (``static_exit<k>``) beside the policies; ``same_run_simulated_ms`` is the policy's exit histogram times
    those times plus its decisions at exits ``0..k`` (its effective ``costs_`` minus ``costs_ms``, cost.csv's), so
    ``measured_vs_same_run`` isolates what the cost model gets wrong about the policy from the drift of the machine.
    """
    static = {int(r["name"].removeprefix("static_exit")): float(r["measured_ms"]) for r in rows
              if r["batch_size"] == 1 and r["name"].startswith("static_exit")}  # fmt: skip
    if len(static) != len(costs_ms):
        return
    for r in rows:
        if r["batch_size"] != 1 or r["name"] not in policies:
            continue
        eff = getattr(policies[r["name"]], "costs_", costs_ms)
        hist = [int(h) for h in json.loads(r["exit_histogram"])]
        per_exit = [static[k] + float(eff[k]) - float(costs_ms[k]) for k in range(len(costs_ms))]
        sim = sum(h * c for h, c in zip(hist, per_exit, strict=True)) / max(sum(hist), 1)
        r.update({"same_run_simulated_ms": sim, "measured_vs_same_run": float(r["measured_ms"]) / sim if sim > 0 else ""})
