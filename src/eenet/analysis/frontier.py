"""The plain-network frontier: what a user could run instead of early exit, compared at equal *measured* latency.

The frontier of a benchmark is the multi-exit network cut after each exit with only that exit's head (same weights,
no other head, no decision: :func:`eenet.measure.costs.run_cut`), exit ``K-1`` being the plain network; each point is
timed in the same interleaved run as the exits (cost.csv's ``cut_ms``; for a cost.csv without it, the plain network
alone) and has exit ``k``'s test accuracy. A policy is placed at its measured latency at batch 1 on the whole test set
(runtime.csv: the timed sample's ``measured_ms / simulated_ms`` times ``test_simulated_ms``, the cost model's
prediction for every test sample); its competitor is the most accurate frontier point at no more than that latency,
and the advantage over it gets the paired bootstrap interval of every other comparison (:func:`frontier_columns`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from eenet.analysis.bootstrap import bootstrap_comparisons

__all__ = ["FRONTIER_FIELDS", "frontier_points", "measured_latency", "frontier_columns"]

FRONTIER_FIELDS = [
    "measured_ms", "frontier_exit", "frontier_ms", "frontier_accuracy", "vs_frontier", "vs_frontier_ci_low", "vs_frontier_ci_high",
]  # fmt: skip
"""Columns of stats.csv from the frontier: the policy's ``measured_ms`` (batch 1, whole test set, see the module);
the competitor's exit (``K-1``: the plain network), its measured ms and test accuracy; ``vs_frontier``: the
policy's test accuracy minus the competitor's, with its 95 % paired bootstrap interval. Empty where the policy was
not run (the oracle, an infeasible fit) or where no frontier point is as fast as it."""


def frontier_points(cost_rows: Sequence[Mapping[str, str]], probs: torch.Tensor, labels: torch.Tensor) -> list[dict[str, Any]]:
    """One point per exit: ``exit``, ``ms`` (cost.csv's ``cut_ms``; the last exit's is the plain network's
    ``plain_ms``) and ``correct`` (``bool [N]``: exit ``k``'s argmax on the test set is right), ``accuracy``.
    ``probs [K, N, C]``, ``labels [N]``. Exits without a timing (a cost.csv written before ``cut_ms``) are left out."""
    rows = sorted(cost_rows, key=lambda r: int(r["exit"]))
    points = []
    for k, r in enumerate(rows):
        ms = r.get("plain_ms") if k == len(rows) - 1 else r.get("cut_ms")
        if ms in (None, ""):
            continue
        correct = probs[k].argmax(dim=1) == labels
        points.append({"exit": k, "ms": float(ms), "correct": correct, "accuracy": float(correct.double().mean())})
    return points


def measured_latency(runtime_rows: Sequence[Mapping[str, str]], method: str, budget_value: Any) -> float | None:
    """A policy's measured ms per sample at batch 1, scaled to the whole test set (``None``: not in runtime.csv)."""
    for r in runtime_rows:
        if r["method"] == method and str(r["budget_value"]) == str(budget_value) and int(r["batch_size"]) == 1:
            if r.get("test_simulated_ms") in (None, ""):
                return float(r["measured_ms"])  # a runtime.csv of an older run: the timed sample's own latency
            return float(r["measured_ms"]) / float(r["simulated_ms"]) * float(r["test_simulated_ms"])
    return None


def frontier_columns(
    rows: Sequence[dict[str, Any]],
    correct: Mapping[tuple[str, Any], torch.Tensor],
    runtime_rows: Sequence[Mapping[str, str]],
    points: Sequence[Mapping[str, Any]],
    reps: int = 2000,
    seed: int = 0,
) -> None:
    """Fill :data:`FRONTIER_FIELDS` in the per-budget ``rows`` of stats.csv (in place), one paired bootstrap for all
    (the same draws): ``correct[(method, budget_value)]`` ``bool [N]`` per policy, ``runtime_rows`` runtime.csv,
    ``points`` :func:`frontier_points`."""
    todo = []
    for row in rows:
        key = (row["method"], row["budget_value"])
        if row["budget_value"] == "all" or key not in correct or not points:
            continue
        ms = measured_latency(runtime_rows, *key)
        if ms is None:
            continue
        row["measured_ms"] = ms
        fast = [p for p in points if p["ms"] <= ms]
        if not fast:
            continue
        best = max(fast, key=lambda p: (p["accuracy"], -p["ms"]))
        row.update({"frontier_exit": best["exit"], "frontier_ms": best["ms"], "frontier_accuracy": best["accuracy"]})
        todo.append((row, correct[key].reshape(-1), best["correct"]))
    if not todo:
        return
    d = torch.stack([a.to(torch.int8) - b.to(torch.int8) for _, a, b in todo])
    r = bootstrap_comparisons(d, reps, seed=seed)
    for i, (row, _, _) in enumerate(todo):
        row.update({"vs_frontier": float(r["diff"][i]), "vs_frontier_ci_low": float(r["ci_low"][i]),
                    "vs_frontier_ci_high": float(r["ci_high"][i])})  # fmt: skip
