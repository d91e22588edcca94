"""Time the whole default chain on a benchmark of a user's own: a folder of images and a torchvision ResNet-18 with
an exit after each of its four stages, every default policy (the README's ``my_images.yaml`` example).

    python benchmarks/user_chain.py [--cores 2] [--images 5000] [--epochs 30]

The images are the first ``--images`` of the packaged Fashion-MNIST training set written as PNG files,
``<class>/<i>.png`` (a fifth held out as test by ``test_size``). The workflow runs in a fresh copy (a temporary
directory), so nothing in the repository's results/ is touched. Prints and records: the whole chain's wall time
(target: under 10 minutes on 2 cores), the time of each rule (from its log's first and last line),
``measure_runtime``'s samples and timings, and measured / simulated at batch 1 over every policy (target: within
15 %). Output: benchmarks/out/user_chain.csv and a section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from _results import append_section, copy_workflow, rule_seconds

REPO = Path(__file__).resolve().parents[1]
FMNIST = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def write_folder(root: Path, n: int) -> None:
    """The first ``n`` Fashion-MNIST training images as ``root/<class>/<i>.png``."""
    from PIL import Image

    with gzip.open(FMNIST / "train-images-idx3-ubyte.gz") as fh:
        images = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    with gzip.open(FMNIST / "train-labels-idx1-ubyte.gz") as fh:
        labels = np.frombuffer(fh.read(), np.uint8, offset=8)[:n]
    for c in CLASSES:
        (root / c).mkdir(parents=True, exist_ok=True)
    for i, (im, y) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(im).save(root / CLASSES[y] / f"{i}.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out"))
    ap.add_argument("--results", default=str(REPO / "benchmarks" / "RESULTS.md"))
    args = ap.parse_args()
    if not FMNIST.is_dir():
        sys.exit(f"{FMNIST} is missing: make data installs it")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="eenet-user-") as tmp:
        wd = copy_workflow(Path(tmp))
        write_folder(wd / "images", args.images)
        config = {
            "datasets": {"own": {"kind": "imagefolder", "path": str(wd / "images"), "test_size": 0.2}},
            "benchmarks": {
                "own": {
                    "dataset": "own",
                    "arch": "torchvision:resnet18",
                    "arch_kwargs": {"exits": ["layer1", "layer2", "layer3", "layer4"]},
                    "split": {"val_size": 500, "seed": 0},
                    "train": {
                        "epochs": args.epochs,
                        "batch_size": 64,
                        "lr": 0.05,
                        "milestones": [int(args.epochs * 2 / 3), int(args.epochs * 5 / 6)],
                        "augment_pad": 2,
                    },  # fmt: skip
                    "budgets": {"values": [0.4, 0.5, 0.6, 0.7, 0.8]},
                }
            },
        }
        (wd / "own.yaml").write_text(yaml.safe_dump(config))
        cmd = [sys.executable, "-m", "snakemake", "--cores", str(args.cores), "results/own/curve.pdf", "--configfile", "own.yaml"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=wd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        total = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        logs = wd / "logs" / "own"
        per_rule: dict[str, float] = {}
        for log in logs.rglob("*.log"):
            rule = log.relative_to(logs).parts[0].removesuffix(".log")
            per_rule[rule] = per_rule.get(rule, 0.0) + rule_seconds(log)
        runtime = list(csv.DictReader(open(wd / "results" / "own" / "runtime.csv")))
        shutil.copy(wd / "results" / "own" / "runtime.csv", out / "user_chain_runtime.csv")
    one = [r for r in runtime if r["batch_size"] == "1"]
    ratios = [float(r["measured_vs_simulated"]) for r in one]
    policies = {r["method"] for r in one if r["budget_value"]}
    shared = sum(1 for r in one if r["timing_shared_with"])
    figures = {
        "chain_s": round(total, 1),
        **{f"{rule}_s": round(s, 1) for rule, s in sorted(per_rule.items()) if s > 0},
        "runtime_samples": one[0]["samples"],
        "runtime_rows_batch1": len(one),
        "runtime_shared_timings_batch1": shared,
        "measured_vs_simulated_median": round(statistics.median(ratios), 3),
        "measured_vs_simulated_min": round(min(ratios), 3),
        "measured_vs_simulated_max": round(max(ratios), 3),
        "plain_ms_batch1": round(float(one[0]["plain_ms"]), 4),
        "methods": len(policies),
    }
    for k, v in figures.items():
        print(f"{k}: {v}")
    with open(out / "user_chain.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["measure", "value"])
        w.writerows(figures.items())
    cpu = platform.processor() or platform.machine()
    machine = f"{os.cpu_count()} CPUs ({cpu}), {args.cores} cores requested, Python {platform.python_version()}"
    table = ["| measure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in figures.items())]
    note = (
        f"{args.images} Fashion-MNIST images as a folder, torchvision:resnet18 with 4 exits, {args.epochs} epochs, every default "
        f"policy, 5 budgets; {machine}. Targets: chain under 600 s, measured / simulated within 0.85-1.15 at batch 1. "
        "<rule>_s: first to last time-stamped line of the rule's logs, summed over its jobs (rules whose logs hold one line left out)."
    )
    append_section(args.results, "A user's own benchmark, the whole default chain", note, table)


if __name__ == "__main__":
    main()
