"""The paper's benchmarks through the workflow, offline: the full DAG of `all`, the text benchmark end to
end on CPU (reduced), and a CIFAR benchmark whose archive is downloaded from a loopback server."""

from __future__ import annotations

import csv
import hashlib
import json

import yaml
from helpers import REPO, cifar_archive, copy_workflow, serve, snakemake

from eenet.data import CIFAR10


def test_dry_run_of_all_lists_every_benchmark(tmp_path):
    copy_workflow(tmp_path, (REPO / "config" / "config.yaml").read_text())
    proc = snakemake(tmp_path, "-n", "all")
    out = proc.stdout + proc.stderr
    benches = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["benchmarks"]
    assert {"cifar10", "cifar100", "imagenet", "sst2", "ag_news", "rotten_tomatoes", "fashion_mnist"} <= set(benches)
    for name in benches:
        assert f"results/{name}/curve.pdf" in out
    for dataset in ("cifar10", "cifar100", "imagenet", "sst2", "ag_news", "rotten_tomatoes"):
        assert f"data/{dataset}/manifest.json" in out
    stats = " ".join(out.split("Job stats:")[1].split())
    # a benchmark with a list of training seeds trains once per seed
    trainings = sum(len(s) if isinstance(s := b.get("train", {}).get("seed", 0), list) else 1 for b in benches.values())
    assert any(isinstance(b.get("train", {}).get("seed"), list) for b in benches.values())
    assert f"train_multiexit {trainings}" in stats and f"download_dataset {len({b['dataset'] for b in benches.values()})}" in stats


def test_text_benchmark_runs_end_to_end_on_cpu(tmp_path):
    wd = copy_workflow(tmp_path, (REPO / "tests" / "config" / "text.yaml").read_text())
    snakemake(wd, "results/rt_tiny/curve.pdf", "results/rt_tiny/examples.pdf")
    res = wd / "results" / "rt_tiny"
    # the visual analysis of a text benchmark shows the test sentences that leave at each exit
    with open(res / "examples.csv", newline="") as fh:
        examples = list(csv.DictReader(fh))
    test_texts = [r["text"] for r in csv.DictReader(open(wd / "data" / "rotten_tomatoes" / "test.csv", newline=""))]
    assert examples and all(r["text"] == test_texts[int(r["index"])] for r in examples)
    assert (res / "examples.pdf").read_bytes()[:4] == b"%PDF"
    with open(res / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["method"] for r in rows} >= {"eenet", "maxpred", "oracle"}
    with open(res / "cost.csv", newline="") as fh:
        costs = list(csv.DictReader(fh))
    assert len(costs) == 3 and float(costs[0]["flops"]) < float(costs[1]["flops"]) < float(costs[2]["flops"])
    metrics = list(csv.DictReader(open(res / "train_metrics.csv", newline="")))
    assert len(metrics) == 1 and all(0.0 <= float(metrics[0][f"val_acc_exit{k}"]) <= 1.0 for k in range(3))
    # pretrained MiniLM layers learn the snippets' sentiment above chance even in one short epoch
    assert float(metrics[0]["val_acc_exit2"]) > 0.55
    log = (wd / "logs" / "rt_tiny" / "train_multiexit.log").read_text()
    assert "device cpu" in log


def test_cifar_benchmark_downloads_its_archive_and_trains(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    md5, _ = cifar_archive(mirror / "cifar-10-binary.tar.gz", CIFAR10, n_per_file=8)
    srv, url = serve(mirror)
    try:
        wd = copy_workflow(tmp_path / "wf", (REPO / "tests" / "config" / "cifar.yaml").read_text().replace("MIRROR", url))
        # the copy's registry holds this archive's md5 in place of the real one: the code path is the real one
        catalog = wd / "src" / "eenet" / "catalog.py"
        catalog.write_text(catalog.read_text().replace(CIFAR10.files["cifar-10-binary.tar.gz"], md5))
        snakemake(wd, "results/cifar_tiny/model.pt", "results/cifar_tiny/cost.csv")
    finally:
        srv.shutdown()
        srv.server_close()
    manifest = json.loads((wd / "data" / "cifar10" / "manifest.json").read_text())
    member = wd / "data" / "cifar10" / "cifar-10-batches-bin" / "test_batch.bin"
    assert (
        manifest["source"] == url
        and manifest["files"]["cifar-10-batches-bin/test_batch.bin"] == hashlib.sha256(member.read_bytes()).hexdigest()
    )
    assert len(manifest["files"]) == 6
    log = (wd / "logs" / "cifar_tiny" / "train_multiexit.log").read_text()
    assert "30 train / 10 val samples" in log  # 5 batches x 8 records, 10 held out


def test_cifar_rule_with_a_corrupt_archive_fails_clearly(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    cifar_archive(mirror / "cifar-10-binary.tar.gz", CIFAR10)  # its md5 is not the real archive's
    wd = copy_workflow(tmp_path / "wf", (REPO / "tests" / "config" / "cifar.yaml").read_text().replace("MIRROR", str(mirror)))
    proc = snakemake(wd, "data/cifar10/manifest.json", check=False)
    assert proc.returncode != 0
    log = (wd / "logs" / "download_dataset" / "cifar10.log").read_text()
    assert f"ChecksumError: {mirror}/cifar-10-binary.tar.gz: md5 is" in log and "expected c32a1d4ab5d03f1284b67883e8d87530" in log
    assert not (wd / "data" / "cifar10").exists() or not [p for p in (wd / "data" / "cifar10").rglob("*") if p.is_file()]
