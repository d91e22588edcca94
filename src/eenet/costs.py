"""Costs of reaching each exit: measured wall-clock latency and counted FLOPs, and budget resolution.

The cost of exit ``k`` is cumulative: the backbone up to stage ``k`` plus the heads of exits ``0..k``
(early-exit inference evaluates every earlier head to decide whether to stop there).
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from .batch import Inputs, first_tensor

if TYPE_CHECKING:  # a type only: fitting and evaluating read costs without the model code
    from .models import MultiExitNetwork

__all__ = [
    "NoisyMeasurementError",
    "sync_device",
    "time_summary",
    "measure_latency",
    "check_spread",
    "count_flops",
    "cost_table",
    "resolve_budget",
    "read_costs",
]


class NoisyMeasurementError(RuntimeError):
    """A latency measurement whose spread is too large to be trusted."""


def sync_device(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); nothing on the CPU. Every timer reads the clock after it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_summary(times_ms: list[float]) -> dict[str, float]:
    """``ms`` (median), ``ms_q1``, ``ms_q3`` (quartiles) of repeated timings."""
    q = statistics.quantiles(times_ms, n=4) if len(times_ms) > 1 else [times_ms[0]] * 3
    return {"ms": statistics.median(times_ms), "ms_q1": q[0], "ms_q3": q[2]}


@torch.inference_mode()
def measure_latency(model: MultiExitNetwork, batch: Inputs, warmup: int = 10, repeats: int = 50) -> list[dict[str, float]]:
    """Median wall-clock time per sample to reach each exit, in ms.

    ``batch`` ``[B, ...]`` or a dict of such tensors (already on the model's device) is run through ``forward_until(k)``;
    repeats are interleaved across exits so that drift on a shared machine hits every exit alike.
    Returns one dict per exit: ``ms`` (median per sample), ``ms_q1``, ``ms_q3`` (quartiles).
    """
    model.eval()
    device = first_tensor(batch).device
    n = first_tensor(batch).shape[0]
    k_exits = model.num_exits
    for _ in range(warmup):
        for k in range(k_exits):
            model.forward_until(batch, k)
    sync_device(device)
    times: list[list[float]] = [[] for _ in range(k_exits)]
    for _ in range(repeats):
        for k in range(k_exits):
            sync_device(device)
            t0 = time.perf_counter()
            model.forward_until(batch, k)
            sync_device(device)
            times[k].append((time.perf_counter() - t0) * 1000.0 / n)
    return [time_summary(ts) for ts in times]


def check_spread(latency: list[dict[str, float]], limit: float) -> list[float]:
    """Relative spread ``(q3 - q1) / median`` of every exit's latency (rows of :func:`measure_latency`).

    Raises:
        NoisyMeasurementError: an exit's spread is above ``limit``; the message names the exits.
    """
    spreads = [(lat["ms_q3"] - lat["ms_q1"]) / lat["ms"] if lat["ms"] > 0 else float("inf") for lat in latency]
    noisy = [f"exit {k}: {s:.2f}" for k, s in enumerate(spreads) if s > limit]
    if noisy:
        raise NoisyMeasurementError(
            f"latency too noisy to trust: interquartile range / median is {', '.join(noisy)}, above profile.max_spread = {limit}"
        )
    return spreads


@torch.inference_mode()
def count_flops(model: MultiExitNetwork, sample: Inputs) -> list[int]:
    """FLOPs per sample to reach each exit (``torch.utils.flop_counter``; a multiply-add counts 2)."""
    model.eval()
    flops = []
    for k in range(model.num_exits):
        counter = FlopCounterMode(display=False)
        with counter:
            model.forward_until(sample, k)
        flops.append(int(counter.get_total_flops() // first_tensor(sample).shape[0]))
    return flops


def cost_table(latency: list[dict[str, float]], flops: list[int], meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of cost.csv: one per exit, with the cost made monotone (``ms`` = running max of ``ms_raw``).

    A deeper exit runs a superset of the work of a shallower one, so a measured median below the
    previous exit's is timing noise; ``ms_raw`` keeps what was measured.
    """
    rows, running = [], 0.0
    for k, (lat, fl) in enumerate(zip(latency, flops, strict=True)):
        running = max(running, lat["ms"])
        rows.append({"exit": k, "ms": running, "ms_raw": lat["ms"], "ms_q1": lat["ms_q1"], "ms_q3": lat["ms_q3"], "flops": fl, **meta})
    return rows


def read_costs(rows: list[dict[str, str]]) -> tuple[list[float], list[int], dict[str, str]]:
    """``(ms [K], flops [K], meta)`` from the rows of a cost.csv (as read by :func:`eenet.io.read_csv`)."""
    rows = sorted(rows, key=lambda r: int(r["exit"]))
    meta = {k: v for k, v in rows[0].items() if k not in {"exit", "ms", "ms_raw", "ms_q1", "ms_q3", "flops"}}
    return [float(r["ms"]) for r in rows], [int(r["flops"]) for r in rows], meta


def resolve_budget(value: float, unit: str, costs_ms: list[float]) -> float:
    """A budget in ms per sample: ``unit`` is ``ms`` or ``fraction`` (of the full model's cost, the last exit)."""
    if unit == "ms":
        return float(value)
    if unit == "fraction":
        return float(value) * costs_ms[-1]
    raise ValueError(f"unknown budget unit {unit!r}; use 'ms' or 'fraction'")
