"""Statistics of a benchmark: area under the accuracy-budget curve, gap to the oracle, each policy's advantage over
MaxPred with a paired bootstrap interval and a multiplicity-adjusted p-value, and budget compliance.

Inputs are per-sample correctness vectors on the test set (``bool [N]`` per policy and budget, or ``[S, N]`` over S
training seeds), the realised costs, and the budgets; everything is computed on the same test samples, so differences
between policies are paired: resampling the test samples keeps each sample's outcome under both policies together,
and every comparison of one stats.csv is made on the same resamples. Policies that take the same decisions are
reported once (:func:`alias_groups`); the comparisons with MaxPred of one stats.csv are one family whose p-values are
Holm-adjusted (:func:`holm`, :func:`benchmark_stats`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from eenet.analysis.bootstrap import alias_groups, bootstrap_comparisons, holm, paired_bootstrap, row_policies
from eenet.analysis.frontier import CLOCK_FIELDS, FRONTIER_FIELDS

__all__ = [
    "paired_bootstrap", "bootstrap_comparisons", "holm", "alias_groups", "area_under_curve", "STATS_FIELDS", "AHEAD_LEVEL",
    "benchmark_stats", "policy_decisions", "correct_by_policy", "seed_stats", "log_stats", "markdown_table",
]  # fmt: skip

STATS_FIELDS = [
    "bench", "seed", "method", "aliases", "budget_value", "budget_ms", "test_accuracy", "vs_maxpred", "vs_maxpred_ci_low",
    "vs_maxpred_ci_high", "seed_ci_low", "seed_ci_high", "p_value", "p_holm", "ahead", "gap_to_oracle", "cost_ratio",
    "over_budget", "auc", "mean_gap_to_oracle", "share_over_budget", "vs_maxpred_seed_min", "vs_maxpred_seed_max",
    "auc_seed_min", "auc_seed_max", *FRONTIER_FIELDS, *CLOCK_FIELDS, "val_accuracy", "val_minus_test", "mean_val_minus_test",
]  # fmt: skip
"""Columns of stats.csv: one row per policy and budget, and one per policy with ``budget_value = all``; ``seed`` is
the run's training seed, or ``mean`` for the rows over seeds (then ``*_seed_min/max`` give the spread of the seeds).
``aliases``: the policies (``;``-separated) that take this row's policy's decisions and have no rows of their own
(:func:`alias_groups`). ``vs_maxpred``: test accuracy minus MaxPred's at the budget; ``vs_maxpred_ci_low/high``: its 95 %
percentile interval with the test samples resampled; ``seed_ci_low/high`` (rows over seeds only): the interval with the
seeds and the test samples resampled (two-level bootstrap); ``p_value``: the two-sided bootstrap p-value of
``vs_maxpred`` (from the two-level bootstrap on the rows over seeds; where no replicate crosses 0, the normal
approximation's tail: :func:`bootstrap_comparisons`), ``p_holm`` it Holm-adjusted over the rows of its
family, ``ahead``: ``p_holm < 0.05`` and ``vs_maxpred > 0`` (see :func:`benchmark_stats`); then the plain-network
frontier's columns (:data:`eenet.analysis.frontier.FRONTIER_FIELDS`) and MaxPred's on the measured clock
(:data:`eenet.analysis.frontier.CLOCK_FIELDS`); ``val_accuracy``: the fitted policy's accuracy on
the validation outputs its fit graded itself on (the evaluation's ``val_accuracy``; the mean over seeds on the mean
rows), ``val_minus_test``: it minus ``test_accuracy`` (positive: the fit promised more than test gave), and on a
policy's ``all`` row ``mean_val_minus_test``, its mean over the feasible budgets."""

AHEAD_LEVEL = 0.05
"""Family-wise error rate of the ``ahead`` column."""


def area_under_curve(budgets: list[float], accuracies: list[float]) -> float:
    """Mean accuracy over the budget range: the trapezoidal area under accuracy vs budget, divided by the range
    (``nan`` with a missing point or a single budget)."""
    pts = sorted(zip(budgets, accuracies, strict=True))
    if len(pts) < 2 or any(a is None or not math.isfinite(a) for _, a in pts):
        return float("nan")
    area = sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False))
    return area / (pts[-1][0] - pts[0][0])


def _compare(compare: list[tuple[dict[str, Any], torch.Tensor, torch.Tensor]], reps: int, seed: int) -> None:
    """Fill the comparison columns of the rows in ``compare`` (row, policy's outcomes, MaxPred's): all bootstrapped
    on the same draws, then the Holm adjustment over them (one family)."""
    if not compare:
        return
    shape = compare[0][1].shape
    for row, a, b in compare:
        if a.shape != b.shape or a.shape != shape or a.dim() not in (1, 2):
            raise ValueError(
                f"paired outcomes need [N] or [S, N] tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)} "
                f"({row['method']} at {row['budget_value']}; the first comparison's: {tuple(shape)})"
            )
    d = torch.stack([(a.to(torch.int8) - b.to(torch.int8)).reshape(-1, shape[-1]) for _, a, b in compare])
    r = bootstrap_comparisons(d, reps, seed=seed)
    several = d.shape[1] > 1
    columns = {"vs_maxpred": "diff", "vs_maxpred_ci_low": "ci_low", "vs_maxpred_ci_high": "ci_high", "p_value": "p"}
    if several:  # the two-level bootstrap: its interval, and its p-value for the Holm adjustment
        columns |= {"seed_ci_low": "seed_ci_low", "seed_ci_high": "seed_ci_high", "p_value": "seed_p"}
    for i, (row, _, _) in enumerate(compare):
        row.update({col: float(r[key][i]) for col, key in columns.items()})
    for (row, _, _), q in zip(compare, holm([row["p_value"] for row, _, _ in compare]), strict=True):
        row.update({"p_holm": q, "ahead": q < AHEAD_LEVEL and row["vs_maxpred"] > 0})


def benchmark_stats(
    bench: str,
    correct: dict[tuple[str, float], torch.Tensor],
    evals: list[dict[str, Any]],
    tolerance: float,
    reps: int = 2000,
    seed: int = 0,
    decisions: Mapping[tuple[str, Any], torch.Tensor] | Sequence[Mapping[tuple[str, Any], torch.Tensor]] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """Rows of stats.csv (:data:`STATS_FIELDS`).

    ``correct[(method, budget_value)]``: ``bool [N]``, whether each test sample is classified correctly under
    that policy (or ``[S, N]`` over seeds, see :func:`paired_bootstrap`); ``evals``: the evaluate_test rows
    (accuracy, cost ratio, budget in ms; infeasible ones say so), in config order.
    The advantage over MaxPred is only computed where ``maxpred`` was fitted at the same budget; the gap to the
    oracle where the oracle was.

    One row per group of identical policies (:func:`alias_groups` of ``decisions``, or ``groups`` as it returns them;
    neither: every policy its own group), under the representative's name, the others in ``aliases``.

    Multiple comparisons: the family is every (policy, budget) row with an advantage over MaxPred -- MaxPred's own
    rows excluded, a group of aliases counted once, the oracle included. Each row's ``p_value`` is the two-sided
    paired bootstrap p-value of its advantage (:func:`bootstrap_comparisons`; with ``[S, N]`` outcomes, S > 1, the
    two-level bootstrap over seeds and test samples, whose interval is ``seed_ci_low/high``); ``p_holm`` is it
    Holm-adjusted over the family (:func:`holm`: family-wise error rate, any dependence between the rows);
    ``ahead``: ``p_holm <`` :data:`AHEAD_LEVEL` and a positive advantage. All comparisons use the same draws
    (``seed``), ``reps`` of them.
    """
    order = list(dict.fromkeys(e["method"] for e in evals))
    if groups is None:
        groups = alias_groups(order, decisions) if decisions is not None else {m: [] for m in order}
    alias_of = {a: rep for rep, al in groups.items() for a in al}
    rows, compare = [], []
    by_method: dict[str, list[dict[str, Any]]] = {}
    for ev in sorted(evals, key=lambda e: (e["method"], e["budget_value"])):
        m, b = ev["method"], ev["budget_value"]
        if m in alias_of:
            continue
        aliases = ";".join(groups.get(m, []))
        row: dict[str, Any] = {"bench": bench, "method": m, "aliases": aliases, "budget_value": b, "budget_ms": ev["budget_ms"]}
        if ev.get("infeasible"):
            by_method.setdefault(m, []).append(row)
            rows.append(row)
            continue
        ratio = float(ev["cost_ratio"])
        row.update({"test_accuracy": ev["test_accuracy"], "cost_ratio": ratio, "over_budget": ratio > 1 + tolerance})
        if ev.get("val_accuracy") not in (None, ""):  # what the fit graded itself at, against what test gave
            val = float(ev["val_accuracy"])
            row.update({"val_accuracy": val, "val_minus_test": val - float(ev["test_accuracy"])})
        if m != "maxpred" and (("maxpred", b) in correct) and (m, b) in correct:
            compare.append((row, correct[(m, b)], correct[("maxpred", b)]))
        oracle = next((e for e in evals if e["method"] == "oracle" and e["budget_value"] == b and not e.get("infeasible")), None)
        if oracle is not None:
            row["gap_to_oracle"] = float(oracle["test_accuracy"]) - float(ev["test_accuracy"])
        by_method.setdefault(m, []).append(row)
        rows.append(row)
    _compare(compare, reps, seed)
    for m, rs in by_method.items():
        feasible = [r for r in rs if "test_accuracy" in r]
        gaps = [r["gap_to_oracle"] for r in feasible if "gap_to_oracle" in r]
        val_gaps = [r["val_minus_test"] for r in feasible if "val_minus_test" in r]
        rows.append({
            "bench": bench, "method": m, "aliases": rs[0]["aliases"], "budget_value": "all",
            "auc": area_under_curve([float(r["budget_ms"]) for r in rs], [r.get("test_accuracy") for r in rs]),
            "mean_gap_to_oracle": sum(gaps) / len(gaps) if gaps else "",
            "share_over_budget": sum(bool(r["over_budget"]) for r in feasible) / len(feasible) if feasible else "",
            "mean_val_minus_test": sum(val_gaps) / len(val_gaps) if val_gaps else "",
        })  # fmt: skip
    return rows


def policy_decisions(
    probs: torch.Tensor, labels: torch.Tensor, fitted: list[dict[str, Any]], logits: torch.Tensor | None = None
) -> dict[tuple[str, float], torch.Tensor]:
    """``{(method, budget_value): int64 [2, N]}``: each test sample's exit (row 0) and predicted class (row 1) under
    each fitted scheduler (its JSON), from the test cache (``probs [K, N, C]``, ``labels [N]``); infeasible fits are
    left out. A combined policy (``ztw_ens+maxpred``) decides and predicts on its combiner's outputs of the raw ``logits
    [K, N, C]``, as the test evaluation does (:meth:`eenet.schedulers.ExitScheduler.outputs`)."""
    from eenet.schedulers import exit_predictions, scheduler_from_json

    tensors = {"probs": probs, "labels": labels} | ({} if logits is None else {"logits": logits})
    out = {}
    for f in fitted:
        if f.get("infeasible"):
            continue
        sched = scheduler_from_json(f)
        outputs = sched.outputs(tensors, "the test cache")
        exits = sched.assign(outputs, labels)  # only the oracle reads the labels
        out[(f["method"], f["budget_value"])] = torch.stack([exits.long(), exit_predictions(outputs, exits).long()])
    return out


def correct_by_policy(
    probs: torch.Tensor,
    labels: torch.Tensor,
    fitted: list[dict[str, Any]],
    logits: torch.Tensor | None = None,
    decisions: dict[tuple[str, float], torch.Tensor] | None = None,
) -> dict[tuple[str, float], torch.Tensor]:
    """``{(method, budget_value): bool [N]}``: whether each test sample (``probs [K, N, C]``, ``labels [N]``) is
    classified correctly by each fitted scheduler (its JSON); infeasible fits are left out. A combined policy
    (``ztw_ens+maxpred``) decides and predicts on its combiner's outputs of the raw ``logits [K, N, C]``, as the test
    evaluation does. ``decisions``: a dict to fill with :func:`policy_decisions`' (for :func:`alias_groups`)."""
    dec = policy_decisions(probs, labels, fitted, logits)
    if decisions is not None:
        decisions.update(dec)
    return {k: v[1] == labels for k, v in dec.items()}


def carry_seed_columns(rows: list[dict[str, Any]], seed_rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> None:
    """Copy ``fields`` from each seed's own stats.csv (``seed_rows``: all seeds' rows, as read) into the rows of the same
    seed, policy and budget in ``rows`` (:func:`seed_stats`' per-seed rows, in place): the columns a run's stats.csv
    computes from its own measurements (the frontier and MaxPred at the measured latency, :mod:`eenet.analysis.frontier`),
    which the aggregate over seeds does not recompute. Empty cells are not copied. A policy that is an alias in its seed's
    own file (the same decisions as another there, not in every seed) takes the row it is an alias of."""
    own = {(str(r["seed"]), m, str(r["budget_value"])): r for r in seed_rows for m in row_policies(r)}
    for row in rows:
        src = own.get((str(row.get("seed")), row["method"], str(row["budget_value"])))
        if src is not None:
            row.update({k: src[k] for k in fields if src.get(k) not in (None, "")})


def seed_stats(
    bench: str,
    seeds: list[tuple[Any, dict[tuple[str, float], torch.Tensor], list[dict[str, Any]]]],
    tolerance: float,
    reps: int = 2000,
    seed: int = 0,
    decisions: Sequence[Mapping[tuple[str, Any], torch.Tensor]] | None = None,
) -> list[dict[str, Any]]:
    """Rows of stats.csv for a benchmark run with several training seeds on the same test set.

    ``seeds``: per run ``(seed label, correct, evals)`` as for :func:`benchmark_stats`. Every run's rows come first
    (``seed`` = its label), then the rows over seeds (``seed = mean``): mean test accuracy, cost ratio and gap to the
    oracle; the advantage over MaxPred as the mean over seeds with a paired bootstrap interval that resamples the test
    samples (the same draw in every seed, ``vs_maxpred_ci_low/high``), one that resamples the seeds and the test
    samples (two-level bootstrap, ``seed_ci_low/high``), and its min/max over seeds; ``over_budget`` the share of seeds
    above 1 + tolerance; per policy the mean AUC and its min/max over seeds. A (policy, budget) infeasible in any seed
    has no mean row values.

    ``decisions``: per run (in the order of ``seeds``) :func:`policy_decisions`; policies identical in every run are
    one row in every part of the file (:func:`alias_groups` over the study). Families of the Holm adjustment: the
    ``mean`` rows (p-values of the two-level bootstrap: the study's claims), and each run's rows on their own (as its
    own stats.csv would have them).
    """
    order = list(dict.fromkeys(e["method"] for _, _, evals in seeds for e in evals))
    groups = alias_groups(order, decisions) if decisions is not None else {m: [] for m in order}
    rows: list[dict[str, Any]] = []
    per_seed: list[list[dict[str, Any]]] = []
    for label, correct, evals in seeds:
        rs = benchmark_stats(bench, correct, evals, tolerance, reps, seed, groups=groups)
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
        has_val = all(e.get("val_accuracy") not in (None, "") for e in evs)
        averaged = ["budget_ms", "test_accuracy", "cost_ratio"] + ["val_accuracy"] * has_val
        mean_evals.append({"method": key[0], "budget_value": key[1], **{k: sum(float(e[k]) for e in evs) / len(evs) for k in averaged}})
        stacked[key] = torch.stack([c[key] for _, c, _ in seeds])
    mean_rows = benchmark_stats(bench, stacked, mean_evals, tolerance, reps, seed, groups=groups)
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
    """A log line per policy (AUC, gap to the oracle, compliance, aliases) and per policy and budget (advantage over
    MaxPred, its intervals, Holm-adjusted p-value)."""
    for r in rows:
        tag = f"{r['method']:<14} seed {r.get('seed', '')}"
        if r["budget_value"] == "all":
            msg = "%s AUC %.4f, mean gap to the oracle %s, share over budget %s%s"
            also = f"; same decisions: {r['aliases']}" if r.get("aliases") else ""
            log.info(msg, tag, r["auc"], r["mean_gap_to_oracle"], r["share_over_budget"], also)
        elif "vs_maxpred" in r:
            seeds = f", over seeds {r['seed_ci_low']:+.4f} .. {r['seed_ci_high']:+.4f}" if "seed_ci_low" in r else ""
            log.info("%s %-5s %+.4f vs maxpred (95%% CI %+.4f .. %+.4f%s), Holm p %.4f%s", tag, r["budget_value"], r["vs_maxpred"],
                     r["vs_maxpred_ci_low"], r["vs_maxpred_ci_high"], seeds, r["p_holm"], " ahead" if r["ahead"] else "")  # fmt: skip


def markdown_table(rows: list[dict[str, str]], methods: list[str] | None = None) -> str:
    """The README's table from the rows of a stats.csv (strings, as read): per policy, the advantage over MaxPred at
    every budget in points with its 95 % interval, the AUC (%) and the mean gap to the oracle (points). With several
    seeds, the ``seed = mean`` rows, the interval over seeds and test samples (``seed_ci_low/high``) where the file
    has it, and the AUC's lowest-highest seed in brackets. A policy's aliases (same decisions) follow its name; an
    advantage marked ``*`` is ``ahead`` (Holm-adjusted p < 0.05), and a note under the table says so. ``methods``:
    which rows, in order (default: MaxPred first, then the others by AUC, the oracle last)."""
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
    over_seeds = any(r.get("seed_ci_low", "") != "" for r in use)
    tested = [r for r in use if r.get("p_holm", "") != ""]
    for m in order:
        cells = []
        for b in budgets:
            r = next((x for x in use if x["method"] == m and x["budget_value"] == b), None)
            if r is None or r.get("test_accuracy", "") == "":
                cells.append("infeasible" if r is not None else "")
            elif m == "maxpred" or r.get("vs_maxpred", "") == "":
                cells.append(f"{100 * float(r['test_accuracy']):.2f}" if m == "maxpred" else "")
            else:
                ci = ("seed_ci_low", "seed_ci_high") if r.get("seed_ci_low", "") != "" else ("vs_maxpred_ci_low", "vs_maxpred_ci_high")
                d, lo, hi = (100 * float(r[k]) for k in ("vs_maxpred", *ci))
                cells.append(f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]" + ("*" if str(r.get("ahead", "")) == "True" else ""))
        a = summary[m]
        auc_cell = f"{100 * float(a['auc']):.2f}" if a["auc"] not in ("", "nan") else ""
        if a.get("auc_seed_min", "") not in ("", "nan") and a.get("auc_seed_max", "") not in ("", "nan"):  # nan: infeasible somewhere
            auc_cell += f" ({100 * float(a['auc_seed_min']):.2f}–{100 * float(a['auc_seed_max']):.2f})"
        gap = f"{100 * float(a['mean_gap_to_oracle']):.2f}" if a.get("mean_gap_to_oracle", "") != "" else ""
        name = m + (f" (= {', '.join(a['aliases'].split(';'))})" if a.get("aliases", "") else "")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {auc_cell} | {gap} |")
    if tested:
        over = "seeds and test samples resampled (two-level bootstrap)" if over_seeds else "test samples resampled (paired bootstrap)"
        k = f"{len(tested)} comparison{'s' * (len(tested) != 1)}"
        lines += ["", f"Intervals: 95 %, {over}. *: ahead of MaxPred, Holm-adjusted p < {AHEAD_LEVEL:g} over {k} "
                      "(every policy and budget). (= …): policies with the same decisions at every budget."]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from eenet.io import read_csv

    if len(sys.argv) != 2:
        sys.exit("usage: python -m eenet.analysis.stats results/<bench>/stats.csv   (prints the README's Markdown table)")
    print(markdown_table(read_csv(sys.argv[1])))
