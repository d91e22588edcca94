"""The re-split reliability study (eenet.analysis.reliability, rule reliability) and the guaranteed policies in the workflow."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from helpers import COSTS, clone_run, make_probs, snakemake

from eenet.analysis.reliability import RELIABILITY_FIELDS, markdown_table, reliability_rows, reliability_study, split_indices


def test_resplits_are_seeded_partitions():
    fit, ev = split_indices(100, 40, seed=3, r=7)
    assert fit.numel() == 40 and ev.numel() == 60
    assert sorted(torch.cat([fit, ev]).tolist()) == list(range(100))
    assert torch.equal(split_indices(100, 40, 3, 7)[0], fit) and not torch.equal(split_indices(100, 40, 3, 8)[0], fit)


def test_rows_count_violations_and_the_price_of_the_guarantee():
    budgets = {0.5: 2.0}
    results = [("maxpred", 0.5, r, c, a) for r, (c, a) in enumerate([(1.9, 0.80), (2.1, 0.82), (2.2, 0.84), (1.0, 0.78)])]
    results += [("maxpred_guard", 0.5, r, c, a) for r, (c, a) in enumerate([(1.8, 0.79), (1.9, 0.80), (math.nan, math.nan), (1.0, 0.76)])]
    rows = {r["method"]: r for r in reliability_rows("b", results, budgets, tolerance=0.075)}
    plain, guard = rows["maxpred"], rows["maxpred_guard"]
    assert plain["violation_rate"] == 0.5 and plain["violation_rate_tol"] == 0.25 and plain["fitted"] == 4
    assert plain["violation_ci_low"] < 0.5 < plain["violation_ci_high"]
    assert plain["excess_p95"] == pytest.approx(torch.quantile(torch.tensor([0.0, 0.05, 0.1, 0.0], dtype=torch.float64), 0.95).item())
    assert guard["fitted"] == 3 and guard["infeasible_share"] == 0.25 and guard["violation_rate"] == 0.0
    assert guard["base_method"] == "maxpred"
    assert guard["accuracy_price"] == pytest.approx(((0.80 - 0.79) + (0.82 - 0.80) + (0.78 - 0.76)) / 3)  # paired, fitted both
    assert "| maxpred_guard | 0.5 | 3/4 | 0.0 |" in markdown_table(list(rows.values()))


def test_study_is_reproducible_and_the_same_with_workers():
    val, test = make_probs(600, seed=1), make_probs(900, seed=2)
    methods = {"maxpred": {}, "maxpred_guard": {"cost": {"delta": 0.1}}, "eenet": {"epochs": 3, "restarts": 1, "lr": 0.01}}
    args = (val, test, COSTS, {0.6: 0.6, 0.8: 0.8}, methods)
    one = reliability_study(*args, resplits=6, seed=1, method_resplits={"eenet": 1})
    two = reliability_study(*args, resplits=6, seed=1, method_resplits={"eenet": 1}, workers=2)
    assert sorted(one) == sorted(two)
    assert len([r for r in one if r[0] == "eenet"]) == 2 and len([r for r in one if r[0] == "maxpred"]) == 12
    rows = reliability_rows("b", one, {0.6: 0.6, 0.8: 0.8}, 0.05)
    guard = [r for r in rows if r["method"] == "maxpred_guard"]
    plain = [r for r in rows if r["method"] == "maxpred"]
    assert all(g["cost_ratio_mean"] < p["cost_ratio_mean"] for g, p in zip(guard, plain, strict=True))


# ---------------------------------------------------------------------------------------------------
# in the workflow


@pytest.fixture(scope="module")
def guarded_run(tiny_run, tmp_path_factory) -> Path:
    """The tiny run with maxpred_guard among its methods (cost guarantee) and a short reliability study."""
    wd = clone_run(tiny_run, tmp_path_factory.mktemp("guarded"))
    path = wd / "config" / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    tiny = cfg["benchmarks"]["tiny"]
    tiny["methods"].append("maxpred_guard")
    tiny["guarantee"] = {"cost": {"delta": 0.2}, "grid": 100}
    tiny["reliability"] = {"resplits": 4, "eenet_resplits": 1}
    path.write_text(yaml.safe_dump(cfg))
    return wd


def test_a_guaranteed_policy_is_fitted_from_the_config_and_run_by_the_runtime(guarded_run):
    snakemake(guarded_run, "results/tiny/curve.pdf")
    fitted = json.loads((guarded_run / "results/tiny/schedulers/maxpred_guard/0.9.json").read_text())
    assert fitted["method"] == "maxpred_guard"
    g = fitted["state"]["guarantee"]
    assert (g["risk"], g["delta"], fitted["state"]["params"]["grid"]) == ("cost", 0.2, 100)
    assert g["upper_bound"] <= g["target"] and g["n_calibration"] == 150 and fitted["val_cost"] <= fitted["budget_ms"]
    runtime = [r for r in csv.DictReader(open(guarded_run / "results/tiny/runtime.csv")) if r["method"] == "maxpred_guard"]
    assert runtime and all(float(r["exits_agree"]) == 1.0 and float(r["preds_agree"]) == 1.0 for r in runtime)


def test_reliability_rule_runs_alone_and_writes_every_policy(guarded_run):
    dry = snakemake(guarded_run, "-n", "results/tiny/reliability.pdf")
    assert "reliability        1" in dry.stdout.replace("\t", " ") or "reliability 1" in " ".join(dry.stdout.split())
    assert "train_multiexit" not in dry.stdout and "fit_scheduler" not in dry.stdout
    snakemake(guarded_run, "results/tiny/reliability.pdf")
    rows = list(csv.DictReader(open(guarded_run / "results/tiny/reliability.csv")))
    assert list(rows[0]) == RELIABILITY_FIELDS
    # the methods less the oracle, maxpred_guard from the config, and entropy's guaranteed variant added
    assert {r["method"] for r in rows} == {"eenet", "maxpred", "entropy", "maxpred_guard", "entropy_guard"}
    assert len(rows) == 5 * 2
    for r in rows:
        assert int(r["resplits"]) == (1 if r["method"] == "eenet" else 4)
        if int(r["fitted"]):
            assert 0 <= float(r["violation_rate"]) <= 1 and 0 <= float(r["accuracy_mean"]) <= 1
    assert any(r["accuracy_price"] != "" for r in rows if r["method"] == "entropy_guard")
    assert (guarded_run / "results/tiny/reliability.pdf").read_bytes()[:4] == b"%PDF"
    assert "re-splits" in (guarded_run / "logs/tiny/reliability.log").read_text()
