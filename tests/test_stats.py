"""stats.csv: the bootstrap interval covers the true difference, the AUC and the per-budget rows are right; policies
deciding alike are one row, the comparisons with MaxPred are Holm-adjusted, and a seed study's intervals resample the
seeds too."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import make_probs

from eenet.analysis.evaluation import evaluate_policy
from eenet.analysis.stats import (
    alias_groups,
    area_under_curve,
    benchmark_stats,
    bootstrap_comparisons,
    correct_by_policy,
    holm,
    markdown_table,
    paired_bootstrap,
    policy_decisions,
    seed_stats,
)
from eenet.schedulers import fit_budgets


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

    from eenet.analysis.stats import STATS_FIELDS
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
    table = [line for line in lines if line.startswith("|")]
    assert [line.split(" | ")[0] for line in table[2:]] == ["| maxpred", "| eenet", "| oracle"]
    mean = next(r for r in rows if r["seed"] == "mean" and r["method"] == "eenet" and r["budget_value"] == 0.5)
    # over seeds: the interval of the two-level bootstrap (seeds and test samples resampled)
    assert f"{100 * mean['vs_maxpred']:+.2f} [{100 * mean['seed_ci_low']:+.2f}, {100 * mean['seed_ci_high']:+.2f}]" in lines[3]
    assert "two-level bootstrap" in lines[-1] and "Holm" in lines[-1]
    auc = next(r for r in rows if r["seed"] == "mean" and r["method"] == "eenet" and r["budget_value"] == "all")
    assert f"{100 * auc['auc']:.2f} ({100 * auc['auc_seed_min']:.2f}–{100 * auc['auc_seed_max']:.2f})" in lines[3]


def test_a_combined_policy_is_scored_on_its_combiners_outputs_as_the_evaluation_scores_it():
    """stats.csv's per-sample correctness of ``ztw_ens+maxpred`` and ``pa+maxpred`` (the paired intervals) is the test
    evaluation's accuracy: exits and predictions from the combiner's outputs of the raw logits, not the single exits'."""
    probs, labels = make_probs(3000, k=4, seed=3)
    logits = probs.clamp_min(1e-9).log() * 2.0  # raw logits whose softmax is not the cached softmax
    val, test = slice(0, 1500), slice(1500, 3000)
    costs = [1.0, 2.0, 3.0, 4.0]
    tensors = {"probs": probs[:, test], "labels": labels[test], "logits": logits[:, test]}
    meta = {"model_sha256": "m"}
    for method in ("ztw_ens+maxpred", "pa+maxpred"):
        (sched,) = fit_budgets(method, {}, probs[:, val], logits[:, val], labels[val], costs, [2.0])
        fitted = {"budget_value": 0.5, "budget_unit": "fraction", "budget_ms": 2.0, "logits_model_sha256": "m", **sched.to_json()}
        row = evaluate_policy(fitted, tensors, meta, costs, [1, 2, 3, 4], bench="b", method=method, device="cpu", tolerance=0.05)
        correct = correct_by_policy(tensors["probs"], tensors["labels"], [fitted], tensors["logits"])[(method, 0.5)]
        assert float(correct.double().mean()) == pytest.approx(row["test_accuracy"])
        # what stats.csv held before: the same thresholds on the single exits' softmax
        alone = {k: v for k, v in fitted.items() if k != "combiner"} | {"method": "maxpred"}
        single = correct_by_policy(tensors["probs"], tensors["labels"], [alone])[("maxpred", 0.5)]
        assert float(single.double().mean()) != pytest.approx(row["test_accuracy"], abs=1e-3)


def _evals(correct, infeasible=()):
    rows = [{"method": m, "budget_value": b, "budget_ms": b, "test_accuracy": c.float().mean().item(), "cost_ratio": 1.0}
            for (m, b), c in correct.items()]  # fmt: skip
    return rows + [{"method": m, "budget_value": b, "budget_ms": b, "infeasible": True} for m, b in infeasible]


def _as_read(rows, tmp_path):
    """The rows as stats.csv holds them (strings)."""
    from eenet.analysis.stats import STATS_FIELDS
    from eenet.io import read_csv, write_csv

    write_csv(tmp_path / "stats.csv", rows, STATS_FIELDS)
    return read_csv(tmp_path / "stats.csv")


def test_policies_with_the_same_decisions_are_one_row_under_the_first_name(tmp_path):
    """Same exit and class for every test sample at every budget: one row, the others in ``aliases``; one sample's
    exit different at one budget, or infeasible where the other is feasible: rows of their own."""
    n = 60
    labels = torch.arange(n) % 4
    base = {
        0.5: torch.stack([torch.arange(n) % 2, torch.arange(n) % 4]),
        0.8: torch.stack([torch.arange(n) % 3, (torch.arange(n) + 1) % 4]),
    }
    learned = {b: d.clone() for b, d in base.items()}
    learned[0.5][1, :20] = (labels[:20] + 1) % 4  # wrong on 20 samples at 0.5
    later = {b: d.clone() for b, d in learned.items()}
    later[0.8][0, 7] = 2  # one sample leaves at another exit (same class) at 0.8
    per_method = {"maxpred_opt": base, "maxpred": base, "eenet_geo": learned, "eenet": learned, "entropy": later, "patience": learned}
    order = list(per_method)
    decisions = {(m, b): d[b] for m, d in per_method.items() for b in (0.5, 0.8) if (m, b) != ("patience", 0.8)}
    assert alias_groups(order, decisions) == {"maxpred": ["maxpred_opt"], "eenet_geo": ["eenet"], "entropy": [], "patience": []}
    # a seed study: identical in one run, not in the other -> not identical
    other = dict(decisions) | {("eenet", 0.5): later[0.8]}
    assert alias_groups(order, [decisions, other])["eenet_geo"] == []

    correct = {k: d[1] == labels for k, d in decisions.items()}
    evals = _evals({(m, b): correct[(m, b)] for m in order for b in (0.5, 0.8) if (m, b) in correct}, [("patience", 0.8)])
    rows = benchmark_stats("b", correct, evals, tolerance=0.05, reps=200, decisions=decisions)
    assert {r["method"] for r in rows} == {"maxpred", "eenet_geo", "entropy", "patience"}
    by = {(r["method"], r["budget_value"]): r for r in rows}
    assert by[("maxpred", "all")]["aliases"] == by[("maxpred", 0.5)]["aliases"] == "maxpred_opt"
    assert by[("eenet_geo", 0.8)]["aliases"] == "eenet" and by[("entropy", 0.5)]["aliases"] == by[("patience", 0.5)]["aliases"] == ""
    assert by[("eenet_geo", 0.5)]["vs_maxpred"] == pytest.approx(-20 / n)
    # the family counts the group once: eenet_geo, entropy at 2 budgets, patience at 1
    assert sum("p_holm" in r for r in rows) == 5
    table = markdown_table(_as_read(rows, tmp_path))
    assert "| maxpred (= maxpred_opt) |" in table and "| eenet_geo (= eenet) |" in table and "| entropy |" in table


def test_holm_adjustment_of_a_hand_computed_example():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6, 0.01]) == pytest.approx([1.0, 1.0, 0.03])  # capped at 1
    assert holm([]) == []


def test_a_large_effect_survives_holm_over_more_comparisons_than_the_bootstrap_resolves():
    """300 comparisons at 500 replicates: a p-value floored at 1 / (reps + 1) would give Holm at least 300 / 501 for
    every one of them, so nothing could survive; the planted +10 points must, the 299 null ones must not, and a p-value
    the replicates resolve stays the percentile one."""
    n, reps = 4000, 500
    g = torch.Generator().manual_seed(1)
    u = (torch.arange(n) + 0.5) / n
    maxpred = u < 0.7
    right, wrong = maxpred.nonzero().flatten(), (~maxpred).nonzero().flatten()

    def null() -> torch.Tensor:  # 40 of MaxPred's right answers wrong, 40 of its wrong ones right: no effect
        x = maxpred.clone()
        x[right[torch.randperm(len(right), generator=g)[:40]]] = False
        x[wrong[torch.randperm(len(wrong), generator=g)[:40]]] = True
        return x

    nulls = [null() for _ in range(299)]
    d = torch.stack([(u < 0.8).to(torch.int8) - maxpred.to(torch.int8)] + [x.to(torch.int8) - maxpred.to(torch.int8) for x in nulls])
    r = bootstrap_comparisons(d, reps, seed=3)
    adjusted = holm(r["p"].tolist())
    assert adjusted[0] < 1e-20 and r["diff"][0] == pytest.approx(0.1)
    assert min(adjusted[1:]) == 1.0 and bool((r["p"][1:] > 1 / (reps + 1)).all())  # the nulls: resolved, nowhere near
    assert r["p"][0] < 1 / (reps + 1) and holm([1 / (reps + 1)] * 300)[0] > 0.5  # the floor: nothing could have survived


def test_a_planted_advantage_is_ahead_and_a_zero_effect_is_not(tmp_path):
    n, reps = 2000, 500
    u = (torch.arange(n) + 0.5) / n
    maxpred = u < 0.7
    outcomes = {
        "good": u < 0.8,  # +10 points
        "level": (u < 0.65) | ((u >= 0.7) & (u < 0.75)),  # right on other samples, the same accuracy: 0 exactly
        "worse": u < 0.6,  # -10 points: significant, but behind
    }
    correct = {("maxpred", b): maxpred for b in (0.5, 0.8)} | {(m, b): c for m, c in outcomes.items() for b in (0.5, 0.8)}
    rows = benchmark_stats("b", correct, _evals(correct), tolerance=0.05, reps=reps, seed=4)
    by = {(r["method"], r["budget_value"]): r for r in rows}
    good, level, worse = by[("good", 0.5)], by[("level", 0.5)], by[("worse", 0.8)]
    # no replicate at or below 0: the normal approximation's tail (+10 points, standard error ~0.7: z ~ 14), not 1 / (reps + 1)
    assert good["ahead"] is True and 0 < good["p_value"] < 1e-30 and good["p_holm"] == pytest.approx(6 * good["p_value"])
    assert level["vs_maxpred"] == 0 and level["ahead"] is False and level["p_holm"] > 0.5
    assert worse["ahead"] is False and worse["p_holm"] < 0.05
    assert "p_holm" not in by[("maxpred", 0.5)] and "ahead" not in by[("maxpred", 0.5)]
    tested = [r for r in rows if "p_holm" in r]
    assert [r["p_holm"] for r in tested] == pytest.approx(holm([r["p_value"] for r in tested]))
    assert "seed_ci_low" not in good  # one seed: the test-only interval only
    # seeded: the same draws again, and the intervals are paired_bootstrap's
    again = {(r["method"], r["budget_value"]): r for r in benchmark_stats("b", correct, _evals(correct), 0.05, reps, seed=4)}
    assert again[("level", 0.5)] == level
    assert paired_bootstrap(outcomes["level"], maxpred, reps, seed=4) == pytest.approx(
        (level["vs_maxpred"], level["vs_maxpred_ci_low"], level["vs_maxpred_ci_high"])
    )
    lines = markdown_table(_as_read(rows, tmp_path)).splitlines()
    good_line, level_line = (next(line for line in lines if line.startswith(f"| {m} |")) for m in ("good", "level"))
    assert good_line.count("]*") == 2 and "*" not in level_line
    assert "Holm" in lines[-1] and "6 comparisons" in lines[-1]


def test_the_interval_over_seeds_and_test_samples_covers_a_seed_far_below():
    """Two seeds +5 points over MaxPred, one -8: the test-only interval of the mean (+0.67) excludes 0, the two-level
    one (seeds resampled too) is wider and includes it, and it gives the Holm p-value of the mean rows."""
    n = 10_000
    u = (torch.arange(n) + 0.5) / n
    seeds = []
    for s, cut in enumerate((0.75, 0.75, 0.62)):
        correct = {("maxpred", 0.5): u < 0.7, ("eenet", 0.5): u < cut}
        seeds.append((s, correct, _evals(correct)))
    rows = seed_stats("b", seeds, tolerance=0.05, reps=1000)
    mean = next(r for r in rows if r["seed"] == "mean" and r["method"] == "eenet" and r["budget_value"] == 0.5)
    assert mean["vs_maxpred"] == pytest.approx((0.05 + 0.05 - 0.08) / 3)
    assert 0 < mean["vs_maxpred_ci_low"] < mean["vs_maxpred"] < mean["vs_maxpred_ci_high"]
    assert mean["seed_ci_low"] < 0 < mean["seed_ci_high"]
    assert mean["seed_ci_high"] - mean["seed_ci_low"] > 5 * (mean["vs_maxpred_ci_high"] - mean["vs_maxpred_ci_low"])
    assert mean["seed_ci_low"] == pytest.approx(-0.08, abs=0.005) and mean["seed_ci_high"] == pytest.approx(0.05, abs=0.005)
    assert mean["p_value"] > 0.05 and mean["ahead"] is False
    per_seed = [r for r in rows if r["seed"] != "mean" and r["method"] == "eenet" and r["budget_value"] == 0.5]
    assert all("seed_ci_low" not in r for r in per_seed) and [r["ahead"] for r in per_seed] == [True, True, False]
    # one seed: the two-level bootstrap is the test-only one
    d = (u < 0.75).to(torch.int8) - (u < 0.7).to(torch.int8)
    r = bootstrap_comparisons(d.view(1, 1, n), reps=300)
    assert torch.equal(r["seed_ci_low"], r["ci_low"]) and torch.equal(r["seed_p"], r["p"])


def test_policy_decisions_are_the_exits_and_classes_the_correctness_is_read_from():
    probs, labels = make_probs(400, k=3, seed=5)
    costs = [1.0, 2.0, 3.0]
    (sched,) = fit_budgets("maxpred", {}, probs, None, labels, costs, [2.0])
    fitted = {"budget_value": 0.5, "budget_unit": "fraction", "budget_ms": 2.0, **sched.to_json()}
    dec: dict = {}
    correct = correct_by_policy(probs, labels, [fitted], decisions=dec)
    assert torch.equal(dec[("maxpred", 0.5)], policy_decisions(probs, labels, [fitted])[("maxpred", 0.5)])
    exits, preds = dec[("maxpred", 0.5)]
    assert torch.equal(exits, sched.assign(probs)) and torch.equal(correct[("maxpred", 0.5)], preds == labels)


def test_the_validation_minus_test_gap_is_reported_per_policy_and_budget(tmp_path):
    """stats.csv's ``val_accuracy`` and ``val_minus_test`` (what a fit graded itself at, minus what test gave), per
    policy and budget, their mean over the budgets on the ``all`` row and over the seeds on the mean rows; in
    tables.html; from a fit and its evaluation as fit_scheduler and evaluate_test make them."""
    from eenet.analysis.tables import bench_tables_html

    def approx(x):
        return pytest.approx(x, abs=1e-6)  # test accuracies are float32 means

    u = (torch.arange(1000) + 0.5) / 1000
    seeds = []
    for s, (val5, val8) in enumerate(((0.80, 0.90), (0.82, 0.92))):
        correct = {("maxpred", 0.5): u < 0.75, ("maxpred", 0.8): u < 0.91}
        evals = _evals(correct)
        evals[0]["val_accuracy"], evals[1]["val_accuracy"] = val5, val8  # gaps: +0.05 and -0.01, then +0.07 and +0.01
        seeds.append((s, correct, evals))
    rows = seed_stats("b", seeds, tolerance=0.05, reps=100)
    got = {(r["seed"], r["budget_value"]): r for r in rows}
    assert got[(0, 0.5)]["val_minus_test"] == approx(0.05) and got[(0, 0.8)]["val_minus_test"] == approx(-0.01)
    assert got[(1, 0.5)]["val_accuracy"] == approx(0.82) and got[(1, 0.5)]["val_minus_test"] == approx(0.07)
    assert got[(0, "all")]["mean_val_minus_test"] == approx(0.02) and got[(1, "all")]["mean_val_minus_test"] == approx(0.04)
    assert got[("mean", 0.5)]["val_accuracy"] == approx(0.81) and got[("mean", 0.5)]["val_minus_test"] == approx(0.06)
    assert got[("mean", "all")]["mean_val_minus_test"] == approx(0.03)
    as_read = _as_read(rows, tmp_path)
    assert float(as_read[0]["val_minus_test"]) == approx(0.05)
    assert "<th>val_minus_test</th>" in bench_tables_html("b", as_read, [], {})
    # an evaluation written without val_accuracy: no gap, no error
    (old,) = [
        r
        for r in benchmark_stats("b", {}, [{k: v for k, v in seeds[0][2][0].items() if k != "val_accuracy"}], 0.05)
        if r["budget_value"] == 0.5
    ]
    assert "val_minus_test" not in old
    # a fit on validation and its test evaluation: the gap is the fitted file's val_accuracy minus the test accuracy
    probs, labels = make_probs(2000, k=3, seed=5)
    val, test = slice(0, 800), slice(800, 2000)
    (sched,) = fit_budgets("maxpred", {}, probs[:, val], None, labels[val], [1.0, 2.0, 3.0], [2.0])
    fitted = {"budget_value": 0.5, "budget_unit": "fraction", "budget_ms": 2.0, "logits_model_sha256": "m", **sched.to_json()}
    ev = evaluate_policy(fitted, {"probs": probs[:, test], "labels": labels[test]}, {"model_sha256": "m"}, [1.0, 2.0, 3.0], [1, 2, 3],
                         bench="b", method="maxpred", device="cpu", tolerance=0.05)  # fmt: skip
    (row,) = [r for r in benchmark_stats("b", {}, [ev], 0.05) if r["budget_value"] == 0.5]
    assert row["val_accuracy"] == sched.val_accuracy_ and row["val_minus_test"] == approx(sched.val_accuracy_ - ev["test_accuracy"])


def test_the_aggregate_over_seeds_keeps_each_seeds_own_measured_clock_columns():
    from eenet.analysis.stats import carry_seed_columns

    rows = [{"seed": "0", "method": "m", "budget_value": "0.5", "vs_frontier": ""}, {"seed": "1", "method": "m", "budget_value": "0.5"},
            {"seed": "mean", "method": "m", "budget_value": "0.5"}]  # fmt: skip
    own = [{"seed": "0", "method": "m", "budget_value": "0.5", "vs_frontier": "0.02", "frontier_network": "cut1", "p_value": "0.9"},
           {"seed": "1", "method": "m", "budget_value": "0.5", "vs_frontier": "", "frontier_network": "cut2"}]  # fmt: skip
    carry_seed_columns(rows, own, ["vs_frontier", "frontier_network"])
    assert rows[0] == {"seed": "0", "method": "m", "budget_value": "0.5", "vs_frontier": "0.02", "frontier_network": "cut1"}
    assert rows[1] == {"seed": "1", "method": "m", "budget_value": "0.5", "frontier_network": "cut2"}  # empty cells not copied
    assert rows[2] == {"seed": "mean", "method": "m", "budget_value": "0.5"}  # the mean row has no seed of its own
    # "o" decides as "m" in seed 1 alone: seed 1's own file lists it as an alias of "m"; the study has a row for it
    rows = [{"seed": "1", "method": "o", "budget_value": "0.5"}]
    carry_seed_columns(rows, [dict(own[1], aliases="o", vs_frontier="0.01")], ["vs_frontier", "frontier_network"])
    assert rows[0] == {"seed": "1", "method": "o", "budget_value": "0.5", "vs_frontier": "0.01", "frontier_network": "cut2"}
