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

__all__ = [
    "paired_bootstrap", "area_under_curve", "STATS_FIELDS", "benchmark_stats", "correct_by_policy", "seed_stats", "log_stats",
    "markdown_table",
]  # fmt: skip

STATS_FIELDS = [
    "bench", "seed", "method", "budget_value", "budget_ms", "test_accuracy", "vs_maxpred", "vs_maxpred_ci_low",
    "vs_maxpred_ci_high", "gap_to_oracle", "cost_ratio", "over_budget", "auc", "mean_gap_to_oracle", "share_over_budget",
    "vs_maxpred_seed_min", "vs_maxpred_seed_max", "auc_seed_min", "auc_seed_max",
]  # fmt: skip
"""Columns of stats.csv: one row per policy and budget, and one per policy with ``budget_value = all``; ``seed`` is
the run's training seed, or ``mean`` for the rows over seeds (then ``*_seed_min/max`` give the spread of the seeds)."""


def paired_bootstrap(a: torch.Tensor, b: torch.Tensor, reps: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Accuracy of ``a`` minus that of ``b`` and its percentile bootstrap interval.

    ``a``, ``b``: ``bool [N]`` (the same test samples), or ``bool [S, N]``: S seeds' outcomes on the same N test
    samples, the difference then being the mean over seeds. Test samples are drawn with replacement ``reps`` times
    (seeded), one draw for all seeds (a test sample's outcomes under every seed stay together); each draw gives one
    difference of means. Returns ``(difference, low, high)`` at confidence ``level``.
    """
    if a.shape != b.shape or a.dim() not in (1, 2):
        raise ValueError(f"paired outcomes need two [N] or [S, N] tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    d = (a.double() - b.double()).reshape(-1, a.shape[-1]).mean(dim=0)  # [N]: per test sample, the mean over seeds
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
    that policy (or ``[S, N]`` over seeds, see :func:`paired_bootstrap`); ``evals``: the evaluate_test rows
    (accuracy, cost ratio, budget in ms; infeasible ones say so).
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


def correct_by_policy(
    probs: torch.Tensor, labels: torch.Tensor, fitted: list[dict[str, Any]], logits: torch.Tensor | None = None
) -> dict[tuple[str, float], torch.Tensor]:
    """``{(method, budget_value): bool [N]}``: whether each test sample (``probs [K, N, C]``, ``labels [N]``) is
    classified correctly by each fitted scheduler (its JSON); infeasible fits are left out. A combined policy
    (``ztw+maxpred``) decides and predicts on its combiner's outputs of the raw ``logits [K, N, C]``, as the test
    evaluation does (:func:`eenet.combiners.policy_outputs`)."""
    from eenet.combiners import policy_outputs
    from eenet.schedulers import exit_predictions, scheduler_from_json

    tensors = {"probs": probs, "labels": labels} | ({} if logits is None else {"logits": logits})
    correct = {}
    for f in fitted:
        if f.get("infeasible"):
            continue
        sched = scheduler_from_json(f)
        outputs = policy_outputs(sched, tensors, "the test cache")
        exits = sched.assign(outputs, labels)  # only the oracle reads the labels
        correct[(f["method"], f["budget_value"])] = exit_predictions(outputs, exits) == labels
    return correct


def seed_stats(
    bench: str,
    seeds: list[tuple[Any, dict[tuple[str, float], torch.Tensor], list[dict[str, Any]]]],
    tolerance: float,
    reps: int = 2000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows of stats.csv for a benchmark run with several training seeds on the same test set.

    ``seeds``: per run ``(seed label, correct, evals)`` as for :func:`benchmark_stats`. Every run's rows come first
    (``seed`` = its label), then the rows over seeds (``seed = mean``): mean test accuracy, cost ratio and gap to the
    oracle; the advantage over MaxPred as the mean over seeds with a paired bootstrap interval that resamples the test
    samples (the same draw in every seed), and its min/max over seeds; ``over_budget`` the share of seeds above
    1 + tolerance; per policy the mean AUC and its min/max over seeds. A (policy, budget) infeasible in any seed has no
    mean row values.
    """
    rows: list[dict[str, Any]] = []
    per_seed: list[list[dict[str, Any]]] = []
    for label, correct, evals in seeds:
        rs = benchmark_stats(bench, correct, evals, tolerance, reps, seed)
        for r in rs:
            r["seed"] = label
        per_seed.append(rs)
        rows += rs
    keys = [(e["method"], e["budget_value"]) for e in seeds[0][2]]
    by_key = [{(e["method"], e["budget_value"]): e for e in evals} for _, _, evals in seeds]
    mean_evals, stacked = [], {}
    for key in keys:
        evs = [d.get(key) for d in by_key]
        if any(e is None or e.get("infeasible") for e in evs) or not all(key in c for _, c, _ in seeds):
            mean_evals.append({"method": key[0], "budget_value": key[1], "budget_ms": evs[0]["budget_ms"], "infeasible": True})
            continue
        mean_evals.append({
            "method": key[0], "budget_value": key[1],
            **{k: sum(float(e[k]) for e in evs) / len(evs) for k in ("budget_ms", "test_accuracy", "cost_ratio")},
        })  # fmt: skip
        stacked[key] = torch.stack([c[key] for _, c, _ in seeds])
    mean_rows = benchmark_stats(bench, stacked, mean_evals, tolerance, reps, seed)
    for r in mean_rows:
        r["seed"] = "mean"
        same = [next(x for x in rs if x["method"] == r["method"] and x["budget_value"] == r["budget_value"]) for rs in per_seed]
        if r["budget_value"] == "all":
            aucs = [x["auc"] for x in same]
            r.update({"auc_seed_min": min(aucs), "auc_seed_max": max(aucs)})
            shares = [x["share_over_budget"] for x in same if x["share_over_budget"] != ""]
            r["share_over_budget"] = sum(shares) / len(shares) if shares else ""
        elif "test_accuracy" in r:
            r["over_budget"] = sum(bool(x["over_budget"]) for x in same) / len(same)
            if "vs_maxpred" in r:
                diffs = [x["vs_maxpred"] for x in same]
                r.update({"vs_maxpred_seed_min": min(diffs), "vs_maxpred_seed_max": max(diffs)})
    return rows + mean_rows


def log_stats(log: Any, rows: list[dict[str, Any]]) -> None:
    """A log line per policy (AUC, gap to the oracle, compliance) and per policy and budget (advantage over MaxPred)."""
    for r in rows:
        tag = f"{r['method']:<14} seed {r.get('seed', '')}"
        if r["budget_value"] == "all":
            msg = "%s AUC %.4f, mean gap to the oracle %s, share over budget %s"
            log.info(msg, tag, r["auc"], r["mean_gap_to_oracle"], r["share_over_budget"])
        elif "vs_maxpred" in r:
            log.info("%s %-5s %+.4f vs maxpred (95%% CI %+.4f .. %+.4f)", tag, r["budget_value"], r["vs_maxpred"],
                     r["vs_maxpred_ci_low"], r["vs_maxpred_ci_high"])  # fmt: skip


def markdown_table(rows: list[dict[str, str]], methods: list[str] | None = None) -> str:
    """The README's table from the rows of a stats.csv (strings, as read): per policy, the advantage over MaxPred at
    every budget in points with its 95 % interval, the AUC (%) and the mean gap to the oracle (points). With several
    seeds, the ``seed = mean`` rows, and the AUC's lowest-highest seed in brackets. ``methods``: which rows, in order
    (default: MaxPred first, then the others by AUC, the oracle last)."""
    seeds = {r.get("seed", "") for r in rows}
    use = [r for r in rows if r["seed"] == "mean"] if "mean" in seeds else rows
    budgets = sorted({r["budget_value"] for r in use if r["budget_value"] != "all"}, key=float)
    summary = {r["method"]: r for r in use if r["budget_value"] == "all"}

    def auc(m: str) -> float:
        v = summary[m]["auc"]
        return float(v) if v not in ("", "nan") else float("-inf")

    others = sorted((m for m in summary if m not in ("maxpred", "oracle")), key=auc, reverse=True)
    order = methods or [m for m in ("maxpred",) if m in summary] + others + [m for m in ("oracle",) if m in summary]
    head = "| policy | " + " | ".join(budgets) + " | AUC (%) | gap to oracle |"
    lines = [head, "|---" * (len(budgets) + 3) + "|"]
    for m in order:
        cells = []
        for b in budgets:
            r = next((x for x in use if x["method"] == m and x["budget_value"] == b), None)
            if r is None or r.get("test_accuracy", "") == "":
                cells.append("infeasible" if r is not None else "")
            elif m == "maxpred" or r.get("vs_maxpred", "") == "":
                cells.append(f"{100 * float(r['test_accuracy']):.2f}" if m == "maxpred" else "")
            else:
                d, lo, hi = (100 * float(r[k]) for k in ("vs_maxpred", "vs_maxpred_ci_low", "vs_maxpred_ci_high"))
                cells.append(f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]")
        a = summary[m]
        auc_cell = f"{100 * float(a['auc']):.2f}" if a["auc"] not in ("", "nan") else ""
        if a.get("auc_seed_min", "") != "":
            auc_cell += f" ({100 * float(a['auc_seed_min']):.2f}–{100 * float(a['auc_seed_max']):.2f})"
        gap = f"{100 * float(a['mean_gap_to_oracle']):.2f}" if a.get("mean_gap_to_oracle", "") != "" else ""
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {auc_cell} | {gap} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from eenet.io import read_csv

    if len(sys.argv) != 2:
        sys.exit("usage: python -m eenet.analysis.stats results/<bench>/stats.csv   (prints the README's Markdown table)")
    print(markdown_table(read_csv(sys.argv[1])))
