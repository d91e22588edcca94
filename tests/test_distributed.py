"""Data-parallel training (train.processes > 1): the distributed sampler, two ranks on the CPU with gloo through the
workflow, the same result as one process with the same global batch, and a killed rank that stops the run and is
resumed by the next."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from helpers import SNAKEMAKE, copy_workflow, make_texts, make_tiny_bert, needs_fmnist, snakemake, tiny_config, workflow_env

from eenet.training.distributed import Ranks, failed_rank, rank_batches


@pytest.mark.parametrize(("n", "batch", "world"), [(10, 4, 2), (11, 4, 3), (7, 8, 2), (5, 4, 4), (103, 32, 3), (9, 3, 4)])
def test_every_sample_once_per_epoch_and_the_global_batch_gradient(n, batch, world):
    for epoch_seed in (0, 1):
        single = list(torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed)).split(batch))
        parts = [list(rank_batches(n, batch, Ranks(r, r, world), torch.Generator().manual_seed(epoch_seed))) for r in range(world)]
        assert all(len(p) == len(single) for p in parts)  # every rank takes part in every step
        used = torch.cat([idx for p in parts for idx, w in p if w > 0])
        assert sorted(used.tolist()) == list(range(n))  # each sample exactly once
        for step, whole in enumerate(single):
            pieces = [parts[r][step] for r in range(world)]
            assert torch.equal(torch.cat([idx for idx, w in pieces if w > 0]), whole)  # the single process's batch, cut
            # DDP averages the ranks' gradients of (weight x mean loss): sum_r (w_r / world) (1 / b_r) sum_i g_i must be
            # the global batch's mean gradient, (1 / B) sum_i g_i, so w_r = b_r world / B
            assert all(w == pytest.approx(len(idx) * world / whole.numel()) for idx, w in pieces if w > 0)
            assert all(len(idx) >= min(2, whole.numel()) for idx, _ in pieces)  # BatchNorm trains on 2 samples at least
            assert sum(w / world for idx, w in pieces if w > 0) == pytest.approx(
                sum(len(idx) for idx, w in pieces if w > 0) / whole.numel()
            )


def test_the_failed_rank_is_named():
    torchrun = (
        "Failures:\n[1]:\n  rank      : 0 (local_rank: 0)\n  exitcode  : -15 (pid: 41)\n-----\n"  # stopped because rank 1 died
        "Root Cause (first observed failure):\n[0]:\n  time      : 2026\n  host      : node1\n  rank      : 1 (local_rank: 1)\n"
        "  exitcode  : -9 (pid: 42)\n"
    )
    assert failed_rank(torchrun) == "rank 1 (local rank 1) killed by SIGKILL"
    assert failed_rank(torchrun.replace("-9", "1")) == "rank 1 (local rank 1) exit code 1"
    assert failed_rank("srun: error: node2: task 3: Killed\n") == "rank 3 killed"
    assert failed_rank("nothing useful") is None


def two_ranks(cfg: dict, bench: str, **train) -> None:
    cfg["benchmarks"][bench]["train"].update(train)


@pytest.mark.workflow
def test_two_ranks_equal_one_rank_with_the_same_global_batch(tmp_path):
    """A network without BatchNorm or dropout (a tiny BERT, LayerNorm only), no augmentation: the only difference between
    the runs is where the gradient of each global batch is summed (two parts added by gloo's all-reduce, or one batch),
    i.e. float32 rounding (measured: 1.5e-7 at most after 18 AdamW steps; the test allows 1e-5). 279 training texts make
    a last batch of 23, cut 12 / 11: without the loss weights of rank_batches the two runs part."""
    texts, labels = make_texts(360, seed=2)
    pd.DataFrame({"text": texts, "label": labels}).to_csv(tmp_path / "texts.csv", index=False)
    bert = make_tiny_bert(tmp_path / "bert", layers=2, weights=True, dropout=0.0)
    bench = {
        "dataset": "texts", "arch": f"huggingface:{bert}", "arch_kwargs": {"exit_layers": [1, 2], "dropout": 0.0}, "max_length": 16,
        "device": "cpu", "split": {"val_size": 41, "seed": 0},
        "train": {"optimizer": "adamw", "lr": 1.0e-3, "lr_schedule": "linear", "epochs": 2, "batch_size": 32, "augment_pad": 0,
                  "augment_flip": False, "eval_batch_size": 64},
        "budgets": {"values": [0.5]},
    }  # fmt: skip
    cfg = {
        "datasets": {"texts": {"kind": "table", "train": str(tmp_path / "texts.csv"), "test_size": 40}},
        "benchmarks": {"one": bench, "two": yaml.safe_load(yaml.safe_dump(bench))},
    }
    two_ranks(cfg, "two", processes=2)
    wd = copy_workflow(tmp_path / "wf", yaml.safe_dump(cfg))
    snakemake(wd, "results/one/model.pt", "results/two/model.pt")
    a = torch.load(wd / "results/one/model.pt", weights_only=True)["state_dict"]
    b = torch.load(wd / "results/two/model.pt", weights_only=True)["state_dict"]
    diff = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    print(f"\nlargest weight difference, 2 ranks vs 1 process: {diff:.2e}")
    assert diff < 1e-5
    one = list(csv.DictReader(open(wd / "results/one/train_metrics.csv", newline="")))
    two = list(csv.DictReader(open(wd / "results/two/train_metrics.csv", newline="")))
    for r1, r2 in zip(one, two, strict=True):  # the same losses and validation figures (reduced across the ranks)
        for key in ("train_loss", "val_nll_last_exit", "val_acc_exit0", "val_acc_exit1"):
            assert float(r1[key]) == pytest.approx(float(r2[key]), abs=1e-5), key


def rank_pid(rank: int) -> int | None:
    """The process of a training rank (a ``python -m eenet.pipeline.trainjob`` whose environment says ``RANK=<rank>``)."""
    for proc in Path("/proc").iterdir():
        try:
            if b"eenet.pipeline.trainjob" in (proc / "cmdline").read_bytes() and f"RANK={rank}".encode() in (
                proc / "environ"
            ).read_bytes().split(b"\0"):
                return int(proc.name)
        except (OSError, ValueError):
            continue
    return None


@needs_fmnist
@pytest.mark.workflow
def test_a_killed_rank_stops_the_run_and_the_next_run_resumes(tmp_path):
    cfg = yaml.safe_load(tiny_config())
    cfg["benchmarks"]["tiny"]["split"].update(max_train=5000)  # epochs of a few seconds: the kill comes in epoch 2 or 3
    two_ranks(cfg, "tiny", epochs=3, processes=2)
    wd = copy_workflow(tmp_path / "wf", yaml.safe_dump(cfg))
    ckpt = wd / "results/tiny/checkpoint/last.pt"
    run = subprocess.Popen([*SNAKEMAKE, "--cores", "2", "results/tiny/model.pt"], cwd=wd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env=workflow_env(wd))  # fmt: skip
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and run.poll() is None:
        time.sleep(0.05)
    pid = rank_pid(1)
    assert ckpt.exists() and pid is not None, run.communicate()[0][-3000:]
    os.kill(pid, signal.SIGKILL)  # in epoch 2: epoch 1's checkpoint was just written
    out, _ = run.communicate(timeout=300)
    assert run.returncode != 0
    log = (wd / "logs/tiny/train_multiexit.log").read_text()
    kept = int(torch.load(ckpt, weights_only=True)["epoch"])
    assert kept < 3
    message = "distributed training stopped: rank 1 (local rank 1) killed by SIGKILL; the other ranks were stopped; "
    assert f"{message}{ckpt.relative_to(wd)} holds epoch {kept}: the next run resumes from it (with the same code and config)" in log
    assert not (wd / "results/tiny/model.pt").exists()
    snakemake(wd, "results/tiny/model.pt")
    log = (wd / "logs/tiny/train_multiexit.log").read_text()
    assert f"resuming from {ckpt.relative_to(wd)} after epoch {kept} of 3" in log
    rows = list(csv.DictReader(open(wd / "results/tiny/train_metrics.csv", newline="")))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    # two ranks through the workflow: torchrun started by the rule, gloo, each training sample once per epoch
    assert "torch.distributed.run --standalone --nproc-per-node=2" in log and "rank 0 of 2 (gloo backend)" in log
    assert len(re.findall(r"each of the 5000 training samples used once across 2 ranks", log)) == 3 - kept
    assert "[rank 1]" not in log  # rank 1 logs warnings only, and not to the rule's log
    assert torch.load(wd / "results/tiny/model.pt", weights_only=True)["ranks"] == 2
