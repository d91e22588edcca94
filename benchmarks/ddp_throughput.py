"""Training samples/s of the pipeline's trainer in one process against data-parallel ranks of the same code.

    python benchmarks/ddp_throughput.py [--device cpu|cuda] [--ranks 2] [--images 20000] [--epochs 3]

The demo's recipe (Fashion-MNIST, small_cnn_3 width 16, global batch 128, crop padding 2, flips) on the first
``--images`` training images (validation: 5,000), run through ``eenet.pipeline.trainjob`` exactly as the rule runs it: one
process (``python -m eenet.pipeline.trainjob``, all the threads), then ``--ranks`` ranks started by ``eenet.training.distributed.launch``
(torchrun; gloo on the CPU, nccl on CUDA; the threads shared out). Per configuration: the median epoch time of the
epochs after the first (each epoch includes its validation pass and checkpoint) and training samples/s. On a machine
with fewer cores or GPUs than ranks this shows the cost of the ranks' coordination, not scaling. Appends a table to
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from _results import append_section  # noqa: E402

from eenet.pipeline.logs import device_name  # noqa: E402
from eenet.training.distributed import launch  # noqa: E402


def run(job: dict, ranks: int, threads: int, tmp: Path) -> list[float]:
    """Epoch seconds of one training run with ``ranks`` processes."""
    out = tmp / f"r{ranks}"
    job = {**job, "train": {**job["train"], "processes": ranks}, "checkpoint": str(out / "last.pt"), "log": str(out / "train.log"),
           "model": str(out / "model.pt"), "metrics": str(out / "metrics.csv")}  # fmt: skip
    Path(job["checkpoint"]).parent.mkdir(parents=True, exist_ok=True)
    job_file = tmp / f"job{ranks}.json"
    job_file.write_text(json.dumps(job))
    if ranks == 1:
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        subprocess.run([sys.executable, "-m", "eenet.pipeline.trainjob", str(job_file)], check=True, env=env, cwd=REPO)
    else:
        launch(job_file, ranks, 1, threads, "eenet.pipeline.trainjob")
    with open(job["metrics"], newline="") as fh:
        return [float(r["seconds"]) for r in csv.DictReader(fh)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    manifest = REPO / "data" / "fashion_mnist" / "manifest.json"
    if not manifest.exists():
        sys.exit(f"{manifest} is missing: run `make demo` (or snakemake data/fashion_mnist/manifest.json) first")
    import torch

    job = {
        "dataset": "fashion_mnist", "arch": "small_cnn_3", "arch_kwargs": {"width": 16}, "max_length": 128, "device": args.device,
        "split": {"val_size": 5000, "seed": 0, "max_train": args.images},
        "train": {"epochs": args.epochs, "batch_size": 128, "lr": 0.05, "milestones": [], "augment_pad": 2, "augment_flip": True},
        "data": str(manifest), "code": [], "threads": args.threads,
    }  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for ranks in (1, args.ranks):
            seconds = run(job, ranks, args.threads, Path(tmp))
            epoch = statistics.median(seconds[1:] or seconds)
            rows.append((ranks, epoch, args.images / epoch, seconds))
            epochs = ", ".join(f"{s:.1f}" for s in seconds)
            print(f"{ranks} rank(s): epochs {epochs} s; median {epoch:.2f} s, {args.images / epoch:,.0f} samples/s")
    base = rows[0][1]
    device = device_name(torch.device(args.device))
    note = (
        f"the demo's recipe on {args.images:,} training images (+ 5,000 validation per epoch), {args.threads} thread(s) shared by the "
        "ranks; median epoch after the first (validation and checkpoint included)."
    )
    table = [
        "| ranks | epoch (s) | training samples/s | vs one process |",
        "|---|---|---|---|",
        *(f"| {r} | {e:.2f} | {sps:,.0f} | x{base / e:.2f} |" for r, e, sps, _ in rows),
    ]
    print(append_section(REPO / "benchmarks" / "RESULTS.md", f"Data-parallel training — {device}, {args.threads} thread(s)", note, table))


if __name__ == "__main__":
    main()
