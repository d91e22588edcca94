"""Statistics of a benchmark: area under the accuracy-budget curve, gap to the oracle, a paired bootstrap
interval of each policy's advantage over MaxPred, and budget compliance.

Inputs are per-sample correctness vectors on the test set (``bool [N]`` per policy and budget), the realised
costs, and the budgets; everything is computed on the same test samples, so differences between policies are
paired: resampling the test samples keeps each sample's outcome under both policies together.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["paired_bootstrap", "area_under_curve", "STATS_FIELDS", "benchmark_stats"]

STATS_FIELDS = [
    "bench", "method", "budget_value", "budget_ms", "test_accuracy", "vs_maxpred", "vs_maxpred_ci_low", "vs_maxpred_ci_high",
    "gap_to_oracle", "cost_ratio", "over_budget", "auc", "mean_gap_to_oracle", "share_over_budget",
]  # fmt: skip
"""Columns of stats.csv: one row per policy and budget, and one per policy with ``budget_value = all``."""


def paired_bootstrap(a: torch.Tensor, b: torch.Tensor, reps: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Accuracy of ``a`` minus that of ``b`` (``bool [N]`` each, same samples) and its percentile bootstrap interval.

    Test samples are drawn with replacement ``reps`` times (seeded); each draw gives one difference of means.
    Returns ``(difference, low, high)`` at confidence ``level``.
    """
    if a.shape != b.shape or a.dim() != 1:
        raise ValueError(f"paired outcomes need two vectors of one length, got {tuple(a.shape)} and {tuple(b.shape)}")
    d = a.double() - b.double()  # [N] in {-1, 0, 1}
    n = d.numel()
    g = torch.Generator().manual_seed(int(seed))
    means = torch.empty(reps, dtype=torch.float64)
    chunk = max(1, 2_000_000 // n)
    for i in range(0, reps, chunk):
        m = min(chunk, reps - i)
        means[i : i + m] = d[torch.randint(0, n, (m, n), generator=g)].mean(dim=1)
    alpha = (1.0 - level) / 2
    lo, hi = torch.quantile(means, torch.tensor([alpha, 1 - alpha], dtype=torch.float64)).tolist()
    return float(d.mean()), lo, hi


def area_under_curve(budgets: list[float], accuracies: list[float]) -> float:
    """Mean accuracy over the budget range: the trapezoidal area under accuracy vs budget, divided by the range
    (``nan`` with a missing point or a single budget)."""
    pts = sorted(zip(budgets, accuracies, strict=True))
    if len(pts) < 2 or any(a is None or not math.isfinite(a) for _, a in pts):
        return float("nan")
    area = sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False))
    return area / (pts[-1][0] - pts[0][0])


def benchmark_stats(
    bench: str,
    correct: dict[tuple[str, float], torch.Tensor],
    evals: list[dict[str, Any]],
    tolerance: float,
    reps: int = 2000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows of stats.csv (:data:`STATS_FIELDS`).

    ``correct[(method, budget_value)]``: ``bool [N]``, whether each test sample is classified correctly under
    that policy; ``evals``: the evaluate_test rows (accuracy, cost ratio, budget in ms; infeasible ones say so).
    The advantage over MaxPred is only computed where ``maxpred`` was fitted at the same budget; the gap to the
    oracle where the oracle was.
    """
    rows = []
    by_method: dict[str, list[dict[str, Any]]] = {}
    for ev in sorted(evals, key=lambda e: (e["method"], e["budget_value"])):
        m, b = ev["method"], ev["budget_value"]
        row: dict[str, Any] = {"bench": bench, "method": m, "budget_value": b, "budget_ms": ev["budget_ms"]}
        if ev.get("infeasible"):
            by_method.setdefault(m, []).append(row)
            rows.append(row)
            continue
        ratio = float(ev["cost_ratio"])
        row.update({"test_accuracy": ev["test_accuracy"], "cost_ratio": ratio, "over_budget": ratio > 1 + tolerance})
        if m != "maxpred" and (("maxpred", b) in correct) and (m, b) in correct:
            diff, lo, hi = paired_bootstrap(correct[(m, b)], correct[("maxpred", b)], reps, seed=seed)
            row.update({"vs_maxpred": diff, "vs_maxpred_ci_low": lo, "vs_maxpred_ci_high": hi})
        oracle = next((e for e in evals if e["method"] == "oracle" and e["budget_value"] == b and not e.get("infeasible")), None)
        if oracle is not None:
            row["gap_to_oracle"] = float(oracle["test_accuracy"]) - float(ev["test_accuracy"])
        by_method.setdefault(m, []).append(row)
        rows.append(row)
    for m, rs in by_method.items():
        feasible = [r for r in rs if "test_accuracy" in r]
        gaps = [r["gap_to_oracle"] for r in feasible if "gap_to_oracle" in r]
        rows.append({
            "bench": bench, "method": m, "budget_value": "all",
            "auc": area_under_curve([float(r["budget_ms"]) for r in rs], [r.get("test_accuracy") for r in rs]),
            "mean_gap_to_oracle": sum(gaps) / len(gaps) if gaps else "",
            "share_over_budget": sum(bool(r["over_budget"]) for r in feasible) / len(feasible) if feasible else "",
        })  # fmt: skip
    return rows
