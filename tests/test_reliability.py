"""The re-split reliability study (eenet.analysis.reliability, rule reliability) and the guaranteed policies in the workflow."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from helpers import COSTS, clone_run, edit_config, make_probs, snakemake

from eenet.analysis.reliability import (
    RELIABILITY_FIELDS,
    accuracy_loss,
    markdown_table,
    reliability_rows,
    reliability_study,
    split_indices,
)
from eenet.schedulers import accuracy, fit_budgets, realised_cost


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


def test_workers_fit_with_autograd_after_the_caller_has_exported_a_program():
    """A process that exported a program before its first backward pass (as a test worker or ``eenet export`` may) cannot
    run autograd in a forked child ("Autograd-and-Fork"): the study's workers, which fit the combiner and EENet with
    autograd, must not be forked from the caller. In a fresh interpreter, so that the order is the one that breaks."""
    code = """
import torch
from helpers import COSTS, make_probs
from eenet.analysis.reliability import reliability_study
torch.export.export(torch.nn.Linear(2, 2), (torch.ones(1, 2),))
w = torch.ones(2, requires_grad=True)
(w * 2).sum().backward()
val, test = make_probs(300, seed=1), make_probs(300, seed=2)
logits = (val[0].log(), test[0].log())
res = reliability_study(val, test, COSTS, {0.8: 0.8}, {"ztw_ens+maxpred": {}}, resplits=2, workers=2, logits=logits)
print(len(res))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-1] == "2"


def test_combined_policies_and_guaranteed_compositions_are_studied_as_fitted_alone():
    """``ztw_ens+maxpred`` and ``ztw_ens+maxpred_guard``: the combiner fitted on each re-split's fit part, the policy on its
    probabilities; re-split 0 gives what fit_budgets gives on the same part, evaluated on the combined rest."""
    val, test = make_probs(600, seed=1), make_probs(900, seed=2)
    logits = (val[0].log(), test[0].log())  # softmax(log p) = p: raw logits of these outputs
    budgets = {0.6: 0.6, 0.8: 0.8}
    methods = {"maxpred": {}, "ztw_ens+maxpred": {}, "ztw_ens+maxpred_guard": {"cost": {"delta": 0.1}, "seed": 0}}
    with pytest.raises(ValueError, match="ztw_ens\\+maxpred, ztw_ens\\+maxpred_guard need the raw logits"):
        reliability_study(val, test, COSTS, budgets, methods, resplits=2)
    res = reliability_study(val, test, COSTS, budgets, methods, resplits=3, seed=1, logits=logits)
    assert sorted(res) == sorted(reliability_study(val, test, COSTS, budgets, methods, resplits=3, seed=1, workers=2, logits=logits))
    assert len([r for r in res if r[0] == "ztw_ens+maxpred_guard"]) == 6
    fit, ev = split_indices(1500, 600, seed=1, r=0)
    probs, labels, raw = torch.cat([val[0], test[0]], 1), torch.cat([val[1], test[1]]), torch.cat(logits, 1)
    for method, params in methods.items():
        for sched, value in zip(fit_budgets(method, params, probs[:, fit], raw[:, fit], labels[fit], COSTS, list(budgets.values())),
                                budgets, strict=True):  # fmt: skip
            p = sched.outputs({"probs": probs[:, ev], "logits": raw[:, ev]})
            exits = sched.assign(p)
            want = (realised_cost(exits, torch.tensor(COSTS, dtype=torch.float64)), accuracy(p, labels[ev], exits),
                    accuracy_loss(p, labels[ev], exits))  # fmt: skip
            (got,) = [r[3:] for r in res if r[:3] == (method, value, 0)]
            assert got == pytest.approx(want, abs=1e-6), method
    rows = {(r["method"], r["budget_value"]): r for r in reliability_rows("b", res, budgets, 0.05)}
    for v in budgets:
        guard, plain = rows[("ztw_ens+maxpred_guard", v)], rows[("ztw_ens+maxpred", v)]
        assert guard["base_method"] == "ztw_ens+maxpred" and "accuracy_price" in guard and guard["guarantee"] == "cost, δ 0.05"
        assert guard["cost_ratio_mean"] < plain["cost_ratio_mean"] and "guarantee" not in plain
        assert 0 <= plain["loss_mean"] <= 1 and "loss_violation_rate" not in plain  # the guarantee is on cost


def test_the_accuracy_loss_guarantee_is_counted_against_its_epsilon():
    probs = torch.tensor([[[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], [[0.1, 0.9], [0.3, 0.7], [0.7, 0.3]]])  # [K=2, N=3, C=2]
    labels, exits = torch.tensor([1, 1, 1]), torch.tensor([0, 0, 1])
    assert accuracy_loss(probs, labels, exits) == pytest.approx(1 / 3)  # sample 0 disagrees with the last exit
    assert accuracy_loss(probs, labels, exits, "worse") == pytest.approx(1 / 3)  # ... which was right
    assert accuracy_loss(probs, torch.tensor([0, 1, 0]), exits, "worse") == 0.0
    results = [
        ("maxpred_guard", 0.5, r, c, 0.8, d) for r, (c, d) in enumerate([(1.0, 0.01), (1.0, 0.03), (1.0, 0.06), (math.nan, math.nan)])
    ]
    results += [("maxpred", 0.5, r, 1.0, 0.8, d) for r, d in enumerate([0.06, 0.07, 0.02, 0.08])]
    guarantee = {"accuracy_loss": {"epsilon": 0.05, "delta": 0.1}}
    rows = {r["method"]: r for r in reliability_rows("b", results, {0.5: 2.0}, 0.05, guarantee)}
    guard, plain = rows["maxpred_guard"], rows["maxpred"]
    assert guard["loss_violation_rate"] == pytest.approx(1 / 3) and plain["loss_violation_rate"] == pytest.approx(3 / 4)
    assert guard["loss_violation_ci_low"] < 1 / 3 < guard["loss_violation_ci_high"]
    assert guard["guarantee"] == "accuracy_loss (disagree), ε 0.05, δ 0.1"
    assert guard["loss_mean"] == pytest.approx(0.1 / 3)
    assert "| maxpred_guard | 0.5 | 3/4 | 0.0 |" in markdown_table(list(rows.values()))
    assert markdown_table(list(rows.values())).splitlines()[0].endswith("| mean accuracy loss (%) | loss over ε (%) |")


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
    edit_config(guarded_run, lambda b: b.update(combiners=["ztw_ens"]))  # the study composes it with every studied policy
    dry = snakemake(guarded_run, "-n", "results/tiny/reliability.pdf")
    assert "reliability        1" in dry.stdout.replace("\t", " ") or "reliability 1" in " ".join(dry.stdout.split())
    assert "train_multiexit" not in dry.stdout and "fit_scheduler" not in dry.stdout
    snakemake(guarded_run, "results/tiny/reliability.pdf")
    rows = list(csv.DictReader(open(guarded_run / "results/tiny/reliability.csv")))
    assert list(rows[0]) == RELIABILITY_FIELDS
    # the methods less the oracle, maxpred_guard from the config, and entropy's guaranteed variant added, each alone
    # and after the combiner (from the cache's raw logits)
    alone = {"eenet", "maxpred", "entropy", "maxpred_guard", "entropy_guard"}
    assert {r["method"] for r in rows} == alone | {f"ztw_ens+{m}" for m in alone}
    assert len(rows) == 10 * 2
    for r in rows:
        assert int(r["resplits"]) == (1 if r["method"] in ("eenet", "ztw_ens+eenet") else 4)
        if int(r["fitted"]):
            assert 0 <= float(r["violation_rate"]) <= 1 and 0 <= float(r["accuracy_mean"]) <= 1
    assert any(r["accuracy_price"] != "" for r in rows if r["method"] == "entropy_guard")
    assert all(r["base_method"] == "ztw_ens+maxpred" for r in rows if r["method"] == "ztw_ens+maxpred_guard")
    assert (guarded_run / "results/tiny/reliability.pdf").read_bytes()[:4] == b"%PDF"
    assert "re-splits" in (guarded_run / "logs/tiny/reliability.log").read_text()
