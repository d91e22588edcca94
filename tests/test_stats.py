"""stats.csv: the bootstrap interval covers the true difference, the AUC and the per-budget rows are right."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import make_probs

from eenet.analysis.evaluation import evaluate_policy
from eenet.analysis.stats import area_under_curve, benchmark_stats, correct_by_policy, paired_bootstrap
from eenet.combiners import fit_budgets


def test_bootstrap_interval_covers_the_true_difference_about_95_percent_of_the_time():
    """Paired outcomes with a known difference of accuracies (0.80 - 0.77 = 0.03): in ~95 % of 300 synthetic test
    sets the interval contains it."""
    g = torch.Generator().manual_seed(0)
    covered, n, reps = 0, 400, 300
    for i in range(reps):
        u = torch.rand(n, generator=g)
        a = u < 0.80
        b = u < 0.77  # b is right on a subset of the samples a gets right: strongly paired
        diff, lo, hi = paired_bootstrap(a, b, reps=500, seed=i)
        assert lo <= diff <= hi
        covered += lo <= 0.03 <= hi
    assert 0.90 <= covered / reps <= 0.985, covered / reps


def test_bootstrap_is_paired_narrower_than_for_independent_outcomes():
    g = torch.Generator().manual_seed(1)
    u = torch.rand(2000, generator=g)
    a, b = u < 0.8, u < 0.78  # differ on 2 % of the samples only
    _, lo, hi = paired_bootstrap(a, b, reps=1000)
    assert hi - lo < 0.02  # an unpaired interval would be ~0.05 wide at n = 2000
    with pytest.raises(ValueError, match="paired outcomes"):
        paired_bootstrap(a, b[:10])


def test_area_under_curve_is_the_mean_accuracy_over_the_budget_range():
    assert area_under_curve([1.0, 2.0, 3.0], [0.8, 0.8, 0.8]) == pytest.approx(0.8)
    assert area_under_curve([3.0, 1.0], [0.9, 0.7]) == pytest.approx(0.8)  # linear: the midpoint
    assert area_under_curve([1.0, 2.0, 4.0], [0.6, 0.9, 0.9]) == pytest.approx((0.75 * 1 + 0.9 * 2) / 3)
    assert math.isnan(area_under_curve([1.0, 2.0], [0.8, None]))  # an infeasible budget: no area


def test_benchmark_stats_rows():
    n = 100
    ones, zeros = torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    half = torch.arange(n) < 50
    correct = {("maxpred", 0.5): half, ("eenet", 0.5): ones, ("oracle", 0.5): ones, ("maxpred", 0.8): ones, ("eenet", 0.8): zeros}

    def ev(m, b, acc, ratio):
        return {"method": m, "budget_value": b, "budget_ms": b, "test_accuracy": acc, "cost_ratio": ratio}

    evals = [ev("maxpred", 0.5, 0.5, 1.0), ev("eenet", 0.5, 1.0, 1.1), ev("oracle", 0.5, 1.0, 0.9), ev("maxpred", 0.8, 1.0, 1.0),
             ev("eenet", 0.8, 0.0, 1.0), {"method": "oracle", "budget_value": 0.8, "budget_ms": 0.8, "infeasible": True}]  # fmt: skip
    rows = {(r["method"], r["budget_value"]): r for r in benchmark_stats("b", correct, evals, tolerance=0.05, reps=200)}
    assert rows[("eenet", 0.5)]["vs_maxpred"] == pytest.approx(0.5) and rows[("eenet", 0.8)]["vs_maxpred"] == pytest.approx(-1.0)
    assert "vs_maxpred" not in rows[("maxpred", 0.5)]
    assert rows[("eenet", 0.5)]["gap_to_oracle"] == pytest.approx(0.0) and rows[("maxpred", 0.5)]["gap_to_oracle"] == pytest.approx(0.5)
    assert "gap_to_oracle" not in rows[("eenet", 0.8)]  # the oracle was infeasible there
    assert rows[("eenet", 0.5)]["over_budget"] and not rows[("maxpred", 0.5)]["over_budget"]
    assert rows[("eenet", "all")]["share_over_budget"] == pytest.approx(0.5)
    assert rows[("maxpred", "all")]["auc"] == pytest.approx(0.75)
    assert math.isnan(rows[("oracle", "all")]["auc"])


def test_the_readme_table_comes_from_stats_csv(tmp_path):
    """`python -m eenet.analysis.stats stats.csv` prints the README's table: the mean rows of a seeded benchmark, MaxPred's
    accuracy, every other policy's advantage with its interval, AUC with the seeds' range, the oracle last."""
    import subprocess
    import sys

    from eenet.analysis.stats import STATS_FIELDS, seed_stats
    from eenet.io import write_csv

    g = torch.Generator().manual_seed(3)
    seeds = []
    for s in range(2):
        accs = (("maxpred", 0.7), ("eenet", 0.72), ("oracle", 0.9))
        correct = {(m, b): torch.rand(300, generator=g) < p for m, p in accs for b in (0.5, 0.6)}
        evals = [{"method": m, "budget_value": b, "budget_ms": b, "test_accuracy": c.float().mean().item(), "cost_ratio": 1.0}
                 for (m, b), c in correct.items()]  # fmt: skip
        seeds.append((s, correct, evals))
    rows = seed_stats("b", seeds, 0.05, reps=200)
    path = tmp_path / "stats.csv"
    write_csv(path, [{k: r.get(k, "") for k in STATS_FIELDS} for r in rows], STATS_FIELDS)
    out = subprocess.run([sys.executable, "-m", "eenet.analysis.stats", str(path)], capture_output=True, text=True, check=True).stdout
    lines = out.strip().splitlines()
    assert lines[0] == "| policy | 0.5 | 0.6 | AUC (%) | gap to oracle |"
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| maxpred", "| eenet", "| oracle"]
    mean = next(r for r in rows if r["seed"] == "mean" and r["method"] == "eenet" and r["budget_value"] == 0.5)
    assert f"{100 * mean['vs_maxpred']:+.2f} [{100 * mean['vs_maxpred_ci_low']:+.2f}, {100 * mean['vs_maxpred_ci_high']:+.2f}]" in lines[3]
    auc = next(r for r in rows if r["seed"] == "mean" and r["method"] == "eenet" and r["budget_value"] == "all")
    assert f"{100 * auc['auc']:.2f} ({100 * auc['auc_seed_min']:.2f}–{100 * auc['auc_seed_max']:.2f})" in lines[3]


def test_a_combined_policy_is_scored_on_its_combiners_outputs_as_the_evaluation_scores_it():
    """stats.csv's per-sample correctness of ``ztw+maxpred`` and ``pa+maxpred`` (the paired intervals) is the test
    evaluation's accuracy: exits and predictions from the combiner's outputs of the raw logits, not the single exits'."""
    probs, labels = make_probs(3000, k=4, seed=3)
    logits = probs.clamp_min(1e-9).log() * 2.0  # raw logits whose softmax is not the cached softmax
    val, test = slice(0, 1500), slice(1500, 3000)
    costs = [1.0, 2.0, 3.0, 4.0]
    tensors = {"probs": probs[:, test], "labels": labels[test], "logits": logits[:, test]}
    meta = {"model_sha256": "m"}
    for method in ("ztw+maxpred", "pa+maxpred"):
        (sched,) = fit_budgets(method, {}, probs[:, val], logits[:, val], labels[val], costs, [2.0])
        fitted = {"budget_value": 0.5, "budget_unit": "fraction", "budget_ms": 2.0, "logits_model_sha256": "m", **sched.to_json()}
        row = evaluate_policy(fitted, tensors, meta, costs, [1, 2, 3, 4], bench="b", method=method, device="cpu", tolerance=0.05)
        correct = correct_by_policy(tensors["probs"], tensors["labels"], [fitted], tensors["logits"])[(method, 0.5)]
        assert float(correct.double().mean()) == pytest.approx(row["test_accuracy"])
        # what stats.csv held before: the same thresholds on the single exits' softmax
        alone = {k: v for k, v in fitted.items() if k != "combiner"} | {"method": "maxpred"}
        single = correct_by_policy(tensors["probs"], tensors["labels"], [alone])[("maxpred", 0.5)]
        assert float(single.double().mean()) != pytest.approx(row["test_accuracy"], abs=1e-3)
