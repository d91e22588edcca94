"""The workflow through a real one-node SLURM (tools/local-slurm) with the cluster profile profiles/slurm.

The tiny config runs once locally and once through SLURM; every cluster job must show in sacct, the
outputs upstream of latency must be identical, a job cancelled with scancel is retried as the profile
says, and after a cancelled job with retries off a re-run continues where the run stopped.
Skips (saying why) only where root or apt-get is unavailable.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml
from helpers import FMNIST, REPO, TARGET, copy_workflow, tiny_config

from eenet.io import load_tensors

START, STOP = REPO / "tools" / "local-slurm" / "start.sh", REPO / "tools" / "local-slurm" / "stop.sh"
# the local cluster: account/partition of start.sh, no GPU, 2 CPUs (profile's threads and groups scaled down)
LOCAL_CLUSTER = [
    "--default-resources", "slurm_account=ci", "slurm_partition=debug", "mem_mb=1000", "runtime=10",
    "--set-resources", "train_multiexit:gpu=0",
    "--set-threads", "train_multiexit=2", "cache_logits=2", "profile_latency=2", "measure_runtime=2",
    "--group-components", "schedulers=2",
    "--slurm-init-seconds-before-status-checks", "2",
]  # fmt: skip

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="a local SLURM needs root"),
    pytest.mark.skipif(shutil.which("slurmctld") is None and shutil.which("apt-get") is None, reason="SLURM not installed and no apt-get"),
    pytest.mark.skipif(not FMNIST.is_dir(), reason="the packaged Fashion-MNIST is not installed"),
]


def sh(cmd: list[str], cwd: Path | None = None, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{' '.join(cmd)} ran past {timeout}s:\n{exc.stdout}\n{exc.stderr}") from exc
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


# Snakemake as `python -m snakemake` runs it, with one change to the SLURM plugin's pace: a status check every 2 s.
# The plugin waits 10 s more after every check that finds no job finished (2 s, then 12, 22 ...; the longest
# interval is 180 s), so that a job of 3-6 s on the local cluster waited 14 s or 36 s for the check that saw it
# finish, and the test mostly waited. Nothing it asserts depends on when the checks come.
SNAKEMAKE_FAST_CHECKS = """
from snakemake_executor_plugin_slurm import Executor
from snakemake.cli import main

checks = Executor.check_active_jobs


async def check_active_jobs(self, active_jobs):
    async for job in checks(self, active_jobs):
        yield job
    self.next_seconds_between_status_checks = 2


Executor.check_active_jobs = check_active_jobs
main()
"""


def on_slurm(wd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    # SIGINT, not SIGTERM, on a timeout: SIGTERM leaves Snakemake waiting for jobs it can no longer see
    cmd = ["timeout", "-s", "INT", "500", sys.executable, "-c", SNAKEMAKE_FAST_CHECKS, "--workflow-profile", "profiles/slurm",
           *LOCAL_CLUSTER, *args]  # fmt: skip
    return sh(cmd, wd, check=check, timeout=560)


def sacct(since: str) -> list[dict[str, str]]:
    out = sh(["sacct", "-X", "-n", "-P", "-S", since, "-o", "JobID,State,Comment,WorkDir"]).stdout
    return [dict(zip(["id", "state", "comment", "workdir"], line.split("|"), strict=True)) for line in out.splitlines() if line]


def cancel_when_running(rule: str, found: list[str], stop: threading.Event) -> None:
    """scancel the first job of ``rule`` once SLURM runs it (a cancelled job, as an admin or a user would)."""
    while not stop.is_set():
        out = subprocess.run(["squeue", "-h", "-o", "%i|%k|%T"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            job, comment, state = line.split("|")
            if comment.startswith(f"rule_{rule}") and state == "RUNNING":
                subprocess.run(["scancel", job], check=True)
                found.append(job)
                return
        time.sleep(0.2)


def run_cancelling(wd: Path, rule: str, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    found: list[str] = []
    stop = threading.Event()
    watcher = threading.Thread(target=cancel_when_running, args=(rule, found, stop), daemon=True)
    watcher.start()
    try:
        proc = on_slurm(wd, *args, check=False)
    finally:
        stop.set()
        watcher.join(5)
    return proc, found


@pytest.fixture(scope="module")
def cluster():
    sh(["bash", str(START)], timeout=600)
    yield
    sh(["bash", str(STOP)], timeout=120)


def test_tiny_pipeline_through_slurm_matches_a_local_run(cluster, tiny_run, tmp_path):
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    local = tiny_run  # the session's local run of the same config (read only)

    wd = copy_workflow(tmp_path / "slurm", tiny_config())
    t0 = time.perf_counter()
    proc, cancelled = run_cancelling(wd, "train_multiexit", TARGET)
    slurm_s = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    print(f"\ntiny pipeline through SLURM {slurm_s:.1f} s (one training job cancelled and retried)")

    # the cancelled training job was reported and submitted again (profile: retries 2)
    assert len(cancelled) == 1
    assert f"SLURM-job '{cancelled[0]}' failed, SLURM status is: 'CANCELLED'" in out
    jobs = [j for j in sacct(since) if j["workdir"] == str(wd)]
    states = {}
    for j in jobs:
        states.setdefault(j["comment"].split("_wildcards_")[0], []).append(j["state"])
    assert sorted(states["rule_train_multiexit"]) == ["CANCELLED by 0", "COMPLETED"]
    assert states["rule_cache_logits"] == ["COMPLETED"] and states["rule_profile_latency"] == ["COMPLETED"]
    assert states["rule_measure_runtime"] == ["COMPLETED"]
    # 4 methods, each fitted and evaluated at both budgets by one (fit, evaluate) pair: group jobs of 2 pairs
    assert states["rule_schedulers_evaluate_test_fit_scheduler"] == ["COMPLETED"] * 2
    assert not any("download_dataset" in c or "plot_curve" in c for c in states)  # localrules stay on the submit node

    # the same results as the local run, wherever no wall-clock time enters
    assert (wd / "data/fashion_mnist/manifest.json").read_bytes() == (local / "data/fashion_mnist/manifest.json").read_bytes()
    a = torch.load(local / "results/tiny/model.pt", weights_only=True)["state_dict"]
    b = torch.load(wd / "results/tiny/model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    for split in ("val", "test"):
        la, _ = load_tensors(local / f"results/tiny/logits/{split}.safetensors")
        lb, _ = load_tensors(wd / f"results/tiny/logits/{split}.safetensors")
        assert torch.equal(la["probs"], lb["probs"])
    assert (wd / TARGET).stat().st_size > 0
    assert sorted(p.name for p in (wd / "results/tiny/eval").rglob("*.json")) == sorted(
        p.name for p in (local / "results/tiny/eval").rglob("*.json")
    )

    # retries off, a cancelled job stops the run; the re-run continues where it stopped (the cached outputs are the
    # work left: asking for them alone keeps the test to the jobs that show it)
    shutil.rmtree(wd / "results/tiny/logits")
    logits = "results/tiny/logits/test.safetensors"
    proc, cancelled = run_cancelling(wd, "cache_logits", "--retries", "0", logits)
    assert proc.returncode != 0 and len(cancelled) == 1
    assert f"SLURM-job '{cancelled[0]}' failed, SLURM status is: 'CANCELLED'" in proc.stdout + proc.stderr
    assert not (wd / logits).exists()
    again = on_slurm(wd, logits)
    text = again.stdout + again.stderr
    assert "rule cache_logits:" in text and "rule train_multiexit:" not in text  # training is not redone
    trains = [j for j in sacct(since) if j["workdir"] == str(wd) and j["comment"].startswith("rule_train_multiexit")]
    assert len(trains) == 2  # still only the cancelled and the completed one
    la, _ = load_tensors(local / "results/tiny/logits/test.safetensors")
    assert torch.equal(load_tensors(wd / logits)[0]["probs"], la["probs"])


def test_two_rank_training_is_one_slurm_job_with_two_tasks(cluster, tmp_path):
    """train.processes: 2 -> one SLURM job with 2 tasks, whose script starts the ranks with srun (a step of 2 tasks)."""
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    cfg = yaml.safe_load(tiny_config())
    cfg["benchmarks"]["tiny"]["train"].update(epochs=2, processes=2)
    wd = copy_workflow(tmp_path / "ddp", yaml.safe_dump(cfg))
    # one CPU per rank: the local cluster has two
    proc = on_slurm(wd, "results/tiny/model.pt", "--set-resources", "train_multiexit:gpu=0", "train_multiexit:cpus_per_task=1", check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    out = sh(["sacct", "-n", "-P", "-S", since, "-o", "JobID,NTasks,State,Comment,WorkDir"]).stdout
    rows = [dict(zip(["id", "tasks", "state", "comment", "workdir"], line.split("|"), strict=True)) for line in out.splitlines() if line]
    jobs = [r for r in rows if r["workdir"] == str(wd) and r["comment"].startswith("rule_train_multiexit")]
    assert len(jobs) == 1 and jobs[0]["state"] == "COMPLETED"
    steps = [r for r in rows if r["id"].startswith(jobs[0]["id"] + ".") and r["id"].split(".")[1].isdigit()]
    assert [(s["tasks"], s["state"]) for s in steps] == [("2", "COMPLETED")], rows
    log = (wd / "logs/tiny/train_multiexit.log").read_text()
    assert "srun --nodes=1 --ntasks=2 --ntasks-per-node=2" in log and "rank 0 of 2 (gloo backend)" in log
    assert len(re.findall(r"each of the 400 training samples used once across 2 ranks", log)) == 2
    assert torch.load(wd / "results/tiny/model.pt", weights_only=True)["ranks"] == 2
