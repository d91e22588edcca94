"""Benchmarks with several seeds: one run per seed, aggregated (summary, statistics, curve)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import yaml
from helpers import FMNIST, copy_workflow, snakemake, tiny_config

from eenet.analysis.stats import paired_bootstrap, seed_stats
from eenet.io import read_json
from eenet.models import load_model
from eenet.pipeline.runs import expand_seed_runs


def _bench(**extra):
    return {"train": {"epochs": 1, "seed": 0}, "scheduler_seed": 0, **extra}


def test_integer_seeds_leave_a_benchmark_as_it_is():
    runs, parents = expand_seed_runs({"a": _bench()})
    assert runs == {"a": _bench()} and parents == {}


def test_a_list_of_seeds_makes_one_run_per_seed_paired_with_the_scheduler_seeds():
    b = _bench()
    b["train"]["seed"] = [3, 7]
    b["scheduler_seed"] = [10, 20]
    runs, parents = expand_seed_runs({"a": b})
    assert parents == {"a": ["a/seed3", "a/seed7"]}
    assert [(runs[r]["train"]["seed"], runs[r]["scheduler_seed"]) for r in parents["a"]] == [(3, 10), (7, 20)]
    assert runs["a/seed3"]["train"]["epochs"] == 1 and b["train"]["seed"] == [3, 7]  # the config itself is left alone


@pytest.mark.parametrize(
    ("train_seed", "sched_seed", "message"),
    [(0, [1, 2], "scheduler_seed is a list but train.seed is not"), ([0, 1], [1, 2, 3], "train.seed has 2 seeds and scheduler_seed 3")],
)
def test_unpaired_seed_lists_are_refused(train_seed, sched_seed, message):
    b = _bench()
    b["train"]["seed"], b["scheduler_seed"] = train_seed, sched_seed
    with pytest.raises(ValueError, match=message):
        expand_seed_runs({"a": b})


def test_bootstrap_over_seeds_is_the_mean_difference_with_one_draw_for_every_seed():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 500, generator=g) < 0.8
    b = torch.rand(3, 500, generator=g) < 0.7
    diff, lo, hi = paired_bootstrap(a, b, reps=500)
    per_seed = [paired_bootstrap(a[s], b[s], reps=10)[0] for s in range(3)]
    assert diff == pytest.approx(sum(per_seed) / 3)
    assert lo < diff < hi
    # one seed given as [1, N] is the same as [N]
    assert paired_bootstrap(a[:1], b[:1], reps=300) == paired_bootstrap(a[0], b[0], reps=300)


def test_seed_stats_averages_the_seeds_and_keeps_their_spread():
    g = torch.Generator().manual_seed(1)
    seeds = []
    for s, (acc_m, acc_e) in enumerate([(0.70, 0.75), (0.72, 0.71)]):
        correct = {("maxpred", 0.5): torch.rand(400, generator=g) < acc_m, ("eenet", 0.5): torch.rand(400, generator=g) < acc_e}
        evals = [{"method": m, "budget_value": 0.5, "budget_ms": 1.0 + s, "test_accuracy": c.float().mean().item(),
                  "cost_ratio": 1.0 + 0.1 * s} for (m, _), c in correct.items()]  # fmt: skip
        seeds.append((s, correct, evals))
    rows = seed_stats("b", seeds, tolerance=0.05, reps=200)
    mean = next(r for r in rows if r["seed"] == "mean" and r["method"] == "eenet" and r["budget_value"] == 0.5)
    per = [next(r for r in rows if r["seed"] == s and r["method"] == "eenet" and r["budget_value"] == 0.5) for s in (0, 1)]
    assert mean["test_accuracy"] == pytest.approx((per[0]["test_accuracy"] + per[1]["test_accuracy"]) / 2)
    assert mean["vs_maxpred"] == pytest.approx((per[0]["vs_maxpred"] + per[1]["vs_maxpred"]) / 2)
    assert mean["vs_maxpred_seed_min"] == min(p["vs_maxpred"] for p in per) < mean["vs_maxpred_seed_max"]
    assert mean["over_budget"] == 0.5  # seed 1 realised 1.1 x its budget, beyond the 5 % tolerance
    assert mean["budget_ms"] == pytest.approx(1.5)


SEEDED = "results/tiny/curve.pdf"


@pytest.fixture(scope="module")
def seeded_run(tmp_path_factory):
    if not FMNIST.is_dir():
        pytest.skip("the packaged Fashion-MNIST (dataset-fashion-mnist) is not installed")
    cfg = yaml.safe_load(tiny_config())
    b = cfg["benchmarks"]["tiny"]
    b["train"]["seed"] = [0, 1]
    b["scheduler_seed"] = [5, 6]
    b["methods"] = ["maxpred", "maxpred_opt", "oracle"]
    b["budgets"]["values"] = [0.75]
    b["profile"]["decision_costs"] = False  # nothing here reads them (the tiny run times them)
    wd = copy_workflow(tmp_path_factory.mktemp("seeded"), yaml.safe_dump(cfg))
    snakemake(wd, SEEDED)
    return wd


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_every_seed_trains_its_own_model_and_fits_with_its_scheduler_seed(seeded_run):
    res = seeded_run / "results" / "tiny"
    m0, _ = load_model(str(res / "seed0" / "model.pt"))
    m1, _ = load_model(str(res / "seed1" / "model.pt"))
    w0, w1 = next(iter(m0.state_dict().values())), next(iter(m1.state_dict().values()))
    assert not torch.equal(w0, w1)
    assert read_json(res / "seed0" / "schedulers" / "maxpred_opt" / "0.75.json")["state"]["seed"] == 5
    assert read_json(res / "seed1" / "schedulers" / "maxpred_opt" / "0.75.json")["state"]["seed"] == 6
    for run in ("seed0", "seed1"):
        assert (res / run / "curve.pdf").stat().st_size > 0 and (res / run / "runtime.csv").exists()


def test_the_aggregate_summary_keeps_every_seed_and_their_mean(seeded_run):
    res = seeded_run / "results" / "tiny"
    rows = _rows(res / "summary.csv")
    assert {r["seed"] for r in rows} == {"0", "1", "mean"}
    for method in ("maxpred", "maxpred_opt", "static_exit2"):
        accs = [float(r["test_accuracy"]) for r in rows if r["method"] == method and r["seed"] != "mean"]
        mean = next(r for r in rows if r["method"] == method and r["seed"] == "mean")
        assert len(accs) == 2 and float(mean["test_accuracy"]) == pytest.approx(sum(accs) / 2)
        assert float(mean["test_accuracy_min"]) == min(accs) and float(mean["test_accuracy_max"]) == max(accs)
    # each seed's rows are its run's own summary
    assert [r for r in rows if r["seed"] == "1"] == _rows(res / "seed1" / "summary.csv")
    stats = _rows(res / "stats.csv")
    oracle = next(r for r in stats if r["seed"] == "mean" and r["method"] == "oracle" and r["budget_value"] == "0.75")
    per = [float(r["vs_maxpred"]) for r in stats if r["seed"] in ("0", "1") and r["method"] == "oracle" and r["budget_value"] == "0.75"]
    assert float(oracle["vs_maxpred"]) == pytest.approx(sum(per) / 2)
    assert float(oracle["vs_maxpred_ci_low"]) <= float(oracle["vs_maxpred"]) <= float(oracle["vs_maxpred_ci_high"])
    # over seeds: the two-level bootstrap's interval and Holm-adjusted p-value; every policy a row or an alias of one
    assert float(oracle["seed_ci_low"]) <= float(oracle["vs_maxpred"]) <= float(oracle["seed_ci_high"])
    assert 0 < float(oracle["p_value"]) <= float(oracle["p_holm"]) <= 1
    assert oracle["ahead"] == str(float(oracle["p_holm"]) < 0.05 and float(oracle["vs_maxpred"]) > 0)
    mean_rows = [r for r in stats if r["seed"] == "mean"]
    named = [r["method"] for r in mean_rows if r["budget_value"] == "all"] + [a for r in mean_rows if r["budget_value"] == "all"
                                                                             for a in r["aliases"].split(";") if a]  # fmt: skip
    assert sorted(named) == ["maxpred", "maxpred_opt", "oracle"]
    assert (res / "curve.pdf").read_bytes()[:4] == b"%PDF" and (res / "curve.png").stat().st_size > 0
    # over seeds against the frontier: each seed against its own competitor, the mean of their advantages, two intervals
    compared = [r for r in mean_rows if r.get("vs_frontier")]
    assert compared
    for r in compared:
        key = (r["method"], r["budget_value"])
        seeds = [next(x for x in stats if x["seed"] == s and (x["method"], x["budget_value"]) == key) for s in "01"]
        assert r["frontier_network"] == "/".join(x["frontier_network"] for x in seeds)
        assert float(r["vs_frontier"]) == pytest.approx(sum(float(x["vs_frontier"]) for x in seeds) / 2)
        assert float(r["measured_ms"]) == pytest.approx(sum(float(x["measured_ms"]) for x in seeds) / 2)
        assert float(r["vs_frontier_seed_ci_low"]) <= float(r["vs_frontier"]) <= float(r["vs_frontier_seed_ci_high"])
        assert 0 < float(r["vs_frontier_p_holm"]) <= 1 and all(0 < float(x["vs_frontier_p_holm"]) <= 1 for x in seeds)


def test_a_model_target_of_the_aggregate_names_the_seed_runs(seeded_run):
    proc = snakemake(seeded_run, "-n", "results/tiny/model.pt", check=False)
    assert proc.returncode != 0
    assert "results/tiny/seed0/" in proc.stdout + proc.stderr
