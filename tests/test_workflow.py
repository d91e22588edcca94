"""The whole pipeline on a tiny config, in a temporary copy of the workflow, and what re-runs when.

The copy (Snakefile, rules, scripts, package, profile) lets the tests edit package modules and the
config without touching the repository. Without the packaged Fashion-MNIST the tests on the tiny run skip (its
fixture says why); the others run.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import REPO, SNAKEMAKE, TARGET, clone_run, edit_config, planned_jobs, snakemake, workflow_env


@pytest.fixture(scope="module")
def workdir(tiny_run, tmp_path_factory) -> Path:
    """A copy of the session's finished tiny run, for this module's edits."""
    return clone_run(tiny_run, tmp_path_factory.mktemp("pipeline"))


def test_pipeline_produces_curve_summary_and_artifacts(workdir):
    res = workdir / "results" / "tiny"
    assert (res / "curve.pdf").read_bytes()[:4] == b"%PDF"
    import matplotlib.image

    image = matplotlib.image.imread(res / "curve.png")  # a PNG of the figure, something drawn in colour on white
    assert image.shape[0] > 300 and image.shape[1] > 400 and (image[..., :3].max(-1) - image[..., :3].min(-1) > 0.3).any()
    from eenet.io import load_tensors, read_csv

    val, meta = load_tensors(res / "logits" / "val.safetensors")
    assert val["probs"].shape == (3, 300, 10) and meta["split"] == "val"
    test, _ = load_tensors(res / "logits" / "test.safetensors")
    assert test["probs"].shape == (3, 300, 10)
    costs = read_csv(res / "cost.csv")
    assert [int(r["exit"]) for r in costs] == [0, 1, 2]
    flops = [int(r["flops"]) for r in costs]
    assert flops[0] < flops[1] < flops[2]
    assert all(r["device"].startswith("cpu") and r["batch_size"] == "8" for r in costs)
    # the plain network (stages + last head) is profiled in the same run: fewer FLOPs than the last exit with every head
    assert len({r["plain_ms"] for r in costs}) == 1 and float(costs[0]["plain_ms"]) > 0
    assert flops[0] < int(costs[0]["plain_flops"]) < flops[2]
    rows = list(csv.DictReader(open(res / "summary.csv")))
    methods = {(r["method"], r["budget_value"]) for r in rows}
    for m in ["eenet", "maxpred", "entropy", "oracle"]:
        assert {(m, "0.75"), (m, "0.9")} <= methods
    assert {r["method"] for r in rows if r["method"].startswith("static")} == {"static_exit0", "static_exit1", "static_exit2"}
    for budget in ["0.75", "0.9"]:
        at = {r["method"]: r for r in rows if r["budget_value"] == budget and r["infeasible"] == "False"}
        assert "oracle" in at
        for m, r in at.items():
            assert float(r["test_accuracy"]) <= float(at["oracle"]["test_accuracy"]), m
            assert float(r["val_cost_ms"]) <= float(r["budget_ms"]) + 1e-9, m
    runtime = read_csv(res / "runtime.csv")
    # every policy that can run as inference (not the oracle) and every single exit, at batch 1 and 16
    assert {(r["method"], r["budget_value"], r["batch_size"]) for r in runtime} == {
        (m, b, bs) for m in ["eenet", "maxpred", "entropy"] for b in ["0.75", "0.9"] for bs in ["1", "16"]
    } | {(f"static_exit{k}", "", bs) for k in range(3) for bs in ["1", "16"]}
    for r in runtime:
        assert float(r["measured_ms"]) > 0 and float(r["full_ms"]) > 0 and r["samples"] == "100"
        assert float(r["speedup_vs_plain"]) == pytest.approx(float(r["plain_ms"]) / float(r["measured_ms"]))
        assert r["timing_shared_with"] in {"", *(f"{x['method']}/{x['budget_value']}" for x in runtime)}
        assert float(r["exits_agree"]) == 1.0 and float(r["preds_agree"]) == 1.0, r  # the runtime decides as the cached evaluation
    measured = {(r["method"], r["budget_value"]): r for r in rows if r["measured_ms"]}
    assert ("maxpred", "0.9") in measured and ("oracle", "0.9") not in measured and "measured_batch_ms" in rows[0]
    assert float(measured[("maxpred", "0.9")]["speedup_vs_plain"]) > 0 and float(measured[("maxpred", "0.9")]["plain_ms"]) > 0
    assert (res / "runtime.pdf").read_bytes()[:4] == b"%PDF"
    stats = read_csv(res / "stats.csv")
    per_policy = {r["method"]: r for r in stats if r["budget_value"] == "all"}
    assert set(per_policy) == {"eenet", "maxpred", "entropy", "oracle"}
    assert float(per_policy["oracle"]["auc"]) >= max(float(r["auc"]) for r in per_policy.values())
    for r in stats:
        if r["budget_value"] != "all" and r["method"] in ("eenet", "entropy") and r["vs_maxpred"]:
            assert float(r["vs_maxpred_ci_low"]) <= float(r["vs_maxpred"]) <= float(r["vs_maxpred_ci_high"])
    fitted = json.loads((res / "schedulers" / "eenet" / "0.9.json").read_text())
    assert fitted["method"] == "eenet" and fitted["num_exits"] == 3
    metrics = read_csv(res / "train_metrics.csv")
    assert len(metrics) == 1 and "val_acc_exit2" in metrics[0]
    assert "epoch 1/1" in (workdir / "logs" / "tiny" / "train_multiexit.log").read_text()


def test_up_to_date_tree_has_nothing_to_do(workdir):
    assert planned_jobs(workdir) == {}


def test_touching_a_script_or_config_without_change_reruns_nothing(workdir):
    for rel in ["workflow/scripts/fit_scheduler.py", "src/eenet/schedulers/eenet.py", "config/config.yaml"]:
        os.utime(workdir / rel)
    assert planned_jobs(workdir) == {}


def test_changing_a_budget_reruns_only_fit_evaluate_plot(workdir):
    original = edit_config(workdir, lambda b: b["budgets"]["values"].append(0.8))
    try:
        jobs = planned_jobs(workdir)
    finally:
        (workdir / "config" / "config.yaml").write_text(original)
    # the runtime is timed for every policy in one job (interleaved: one machine state for all of them)
    assert set(jobs) == {"fit_scheduler", "evaluate_test", "measure_runtime", "compute_stats", "plot_curve"}
    # one job a method fits (and evaluates) every budget: the four methods' jobs, with the new budget among their outputs
    assert jobs["fit_scheduler"] == 4 and jobs["evaluate_test"] == 4


def test_changing_the_training_recipe_reruns_training_and_after(workdir):
    original = edit_config(workdir, lambda b: b["train"].update(lr=0.02))
    try:
        jobs = planned_jobs(workdir)
    finally:
        (workdir / "config" / "config.yaml").write_text(original)
    after_training = {"cache_logits", "profile_latency", "fit_scheduler", "evaluate_test", "measure_runtime", "compute_stats", "plot_curve"}
    assert set(jobs) == {"train_multiexit"} | after_training
    assert jobs["fit_scheduler"] == 4  # four methods, each at both budgets in one job


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("schedulers/threshold.py", {"fit_scheduler", "evaluate_test", "measure_runtime", "compute_stats", "plot_curve"}),
        ("measure/costs.py", {"profile_latency", "fit_scheduler", "evaluate_test", "measure_runtime", "compute_stats", "plot_curve"}),
        ("analysis/plotting.py", {"plot_curve"}),
        ("measure/runtime.py", {"measure_runtime", "compute_stats", "plot_curve"}),  # stats: the frontier at the measured latency
        ("analysis/stats.py", {"compute_stats", "plot_curve"}),
        (
            "models/base.py",
            {
                "train_multiexit",
                "cache_logits",
                "profile_latency",
                "fit_scheduler",
                "evaluate_test",
                "measure_runtime",
                "compute_stats",
                "plot_curve",
            },
        ),
    ],
)
def test_editing_a_package_module_reruns_the_rules_that_import_it(workdir, module, expected):
    path = workdir / "src" / "eenet" / module
    original = path.read_text()
    path.write_text(original + "\n# an edit\n")
    try:
        jobs = planned_jobs(workdir)
    finally:
        path.write_text(original)
    assert set(jobs) == expected


def test_wrong_config_key_stops_before_any_job(workdir):
    original = edit_config(workdir, lambda b: b["train"].update(epochz=3))
    try:
        proc = snakemake(workdir, "-n", TARGET, check=False)
    finally:
        (workdir / "config" / "config.yaml").write_text(original)
    assert proc.returncode != 0
    assert "'epochz' was unexpected" in proc.stdout + proc.stderr


def test_lint_is_clean():
    proc = subprocess.run([*SNAKEMAKE, "--lint"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b["train"].update(epochs="many"), "'many' is not of type 'integer'"),
        (lambda b: b["budgets"].update(values=[]), "[] should be non-empty"),
        (lambda b: b["budgets"].update(values=[0.5, 1.5]), "1.5 is greater than the maximum of 1"),
        (lambda b: b["budgets"].update(values=[-0.1]), "-0.1 is less than or equal to the minimum of 0"),
        (lambda b: b.update(methods=["eenet", "magic"]), "'magic' is not one of"),
    ],
)
def test_bad_config_values_stop_before_any_job(workdir, change, message):
    original = edit_config(workdir, change)
    try:
        proc = snakemake(workdir, "-n", TARGET, check=False)
    finally:
        (workdir / "config" / "config.yaml").write_text(original)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


def test_unknown_benchmark_target_lists_the_benchmarks(workdir):
    proc = snakemake(workdir, "-n", "results/nosuchbench/curve.pdf", check=False)
    assert proc.returncode != 0
    assert "unknown benchmark 'nosuchbench' in the target; benchmarks in the config: tiny" in proc.stdout + proc.stderr


def test_logits_from_another_model_are_refused(workdir):
    """Test logits whose model differs from the one the scheduler was fitted on: evaluate_test stops."""
    from eenet.io import load_tensors, save_tensors

    path = workdir / "results" / "tiny" / "logits" / "test.safetensors"
    original = path.read_bytes()
    tensors, meta = load_tensors(path)
    save_tensors(path, tensors, {**meta, "model_sha256": "0" * 64})
    try:
        proc = snakemake(
            workdir,
            "--forcerun",
            "evaluate_test",
            "--allowed-rules",
            "evaluate_test",
            "--",
            "results/tiny/eval/maxpred/0.9.json",
            check=False,
        )
        log = (workdir / "logs" / "tiny" / "evaluate_test" / "maxpred.log").read_text()
    finally:
        path.write_bytes(original)
        snakemake(workdir, TARGET)  # put the tree back
    assert proc.returncode != 0
    # the job stops at the first of the policy's budgets (0.75 in tests/config/tiny.yaml)
    assert "comes from another model than the one results/tiny/schedulers/maxpred/0.75.json was fitted on" in log
    assert planned_jobs(workdir) == {}


def test_a_second_run_in_the_same_directory_is_refused(workdir):
    """While a run holds the directory (stopped with SIGSTOP once its lock is taken, so it cannot finish before the
    second run tries), a second run is refused; the first then finishes and leaves the tree up to date."""
    first = subprocess.Popen([*SNAKEMAKE, "--cores", "2", "--forcerun", "plot_curve", TARGET], cwd=workdir, env=workflow_env(workdir),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    stopped = False
    try:
        locks = workdir / ".snakemake" / "locks"
        deadline = time.time() + 60
        while not (locks.is_dir() and any(locks.iterdir())) and time.time() < deadline and first.poll() is None:
            time.sleep(0.02)
        assert first.poll() is None and any(locks.iterdir()), "the first run did not take the lock"
        os.kill(first.pid, signal.SIGSTOP)
        stopped = True
        second = snakemake(workdir, "--forcerun", "plot_curve", TARGET, check=False)  # a run with a job to do takes the lock
    finally:
        if stopped:
            os.kill(first.pid, signal.SIGCONT)
        assert first.wait(timeout=600) == 0
    assert second.returncode != 0
    out = second.stdout + second.stderr
    assert "Directory cannot be locked" in out and "--unlock" in out
    assert planned_jobs(workdir) == {}


def test_only_a_policy_that_decides_loads_the_network_to_time_its_decisions(tiny_run):
    """fit_scheduler times a policy's decisions after the network's own stages: it loads model.pt and a batch of
    validation inputs for that, on the first timed decision; the oracle decides nothing and loads nothing."""
    loaded = "decisions timed after the stages of results/tiny/model.pt on a batch of 8 validation inputs"
    for method in ("eenet", "maxpred", "entropy"):
        log = (tiny_run / "logs" / "tiny" / "fit_scheduler" / f"{method}.log").read_text()
        assert log.count(loaded) == 1 and f"decision overhead of {method} per exit" in log, log
    oracle = (tiny_run / "logs" / "tiny" / "fit_scheduler" / "oracle.log").read_text()
    assert "decision overhead of oracle per exit [0.0, 0.0, 0.0] ms" in oracle and "decisions timed after" not in oracle, oracle


def test_noisy_latency_fails_profiling_with_a_way_out(tiny_run, tmp_path):
    """A measurement whose spread is above profile.max_spread stops profile_latency with how to re-run it."""
    wd = clone_run(tiny_run, tmp_path / "noisy")
    edit_config(wd, lambda b: b["profile"].update(max_spread=1e-9))
    proc = snakemake(wd, "--forcerun", "profile_latency", "--allowed-rules", "profile_latency", "--", "results/tiny/cost.csv", check=False)
    log = (wd / "logs" / "tiny" / "profile_latency.log").read_text()
    assert proc.returncode != 0
    assert "latency too noisy to trust: interquartile range / median is exit 0:" in log
    assert "snakemake --forcerun profile_latency results/tiny/cost.csv" in log and "profile.repeats (now 5)" in log


def test_a_wrong_value_stops_every_target_even_when_the_results_exist(tiny_run, tmp_path):
    """After a finished run, an architecture that cannot read the dataset stops the curve, `all` and a dry run alike
    with the message, before any job: never "Nothing to be done" with the old results served as current (exits that
    do not exist: tests/test_planning.py, the same check)."""
    wd = clone_run(tiny_run, tmp_path / "broken")
    edit_config(wd, lambda b: b.update(arch="torchvision:resnet18", arch_kwargs={"exits": ["layer1", "layer4.9"]}))
    for args in (("-n", TARGET), (TARGET,), ("-n", "all"), ("results/tiny/summary.csv",)):
        proc = snakemake(wd, *args, check=False)
        text = proc.stdout + proc.stderr
        assert proc.returncode != 0 and "Nothing to be done" not in text, (args, text[-2000:])
        assert "benchmarks.tiny: torchvision:resnet18 reads RGB images" in text, (args, text[-2000:])
