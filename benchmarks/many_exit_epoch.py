"""Seconds per training epoch of the many-exit image network (resnet_6) on Fashion-MNIST-shaped inputs, against the
demo's small_cnn_3, on this machine's CPU: to choose the epochs of a seed that trains in <= 20 min.

    nice -n 10 python benchmarks/many_exit_epoch.py [--batches 40] [--threads 2] [--widths 8 12 16]
        [--reference results/fashion_mnist/train_metrics.csv]

Trains ``--batches`` SGD steps (batch 128, 28x28 grey images, the paper's exit-weighted loss with distillation, as the
trainer runs them) after 3 warm-up steps, times them and scales to an epoch of 55,000 images (the demo's split: 60,000
less 5,000 validation), plus one evaluation pass over 5,000 validation images. A few dozen batches on a shared machine
give noisy figures, and on a machine shared with jobs at a higher priority the absolute times mean little: the step
time relative to small_cnn_3's, measured in the same run, is steadier. With ``--reference`` (a demo run's
train_metrics.csv, whose ``seconds`` column is the trainer's own epoch time) each network's epoch is also estimated as
that ratio times the demo's fastest epoch (the least disturbed by other jobs). Appends a table to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]

from _results import append_section  # noqa: E402

from eenet.models import build_model  # noqa: E402
from eenet.training.loop import exit_weights, multiexit_loss  # noqa: E402

TRAIN, VAL, BATCH = 55_000, 5_000, 128


def epoch_seconds(arch: str, kwargs: dict, batches: int) -> tuple[float, float, int]:
    """(seconds per epoch, seconds per training step, parameters), extrapolated from ``batches`` timed steps."""
    torch.manual_seed(0)
    model = build_model(arch, 10, 1, **kwargs).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    weights = exit_weights(model.num_exits)
    x, y = torch.randn(BATCH, 1, 28, 28), torch.randint(0, 10, (BATCH,))

    def step() -> None:
        opt.zero_grad()
        multiexit_loss(model(x), y, weights, distill=True).backward()
        opt.step()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(batches):
        step()
    per_step = (time.perf_counter() - t0) / batches
    model.eval()
    with torch.inference_mode():
        t0 = time.perf_counter()
        for _ in range(4):
            model(torch.randn(1000, 1, 28, 28))
        eval_s = (time.perf_counter() - t0) / 4 * VAL / 1000
    return per_step * TRAIN / BATCH + eval_s, per_step, sum(p.numel() for p in model.parameters())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--widths", type=int, nargs="+", default=[8, 12, 16])
    ap.add_argument("--reference", help="the demo's train_metrics.csv (small_cnn_3 width 16): its fastest epoch's seconds")
    args = ap.parse_args()
    ref_s = None
    if args.reference:
        import csv

        with open(args.reference) as fh:
            ref_s = min(float(r["seconds"]) for r in csv.DictReader(fh))  # the least disturbed epoch
    torch.set_num_threads(args.threads)
    runs = [("small_cnn_3", {"width": 16})] + [("resnet_6", {"width": w}) for w in args.widths]
    table = [
        "| network | exits | parameters | s per step | s per epoch here | x small_cnn_3 | epoch from the demo's (s) | epochs in 20 min |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base_step = None
    for arch, kw in runs:
        epoch_s, step_s, params = epoch_seconds(arch, kw, args.batches)
        base_step = base_step or step_s
        exits = build_model(arch, 10, 1, **kw).num_exits
        est = ref_s * step_s / base_step if ref_s else epoch_s
        line = (f"| {arch} {kw} | {exits} | {params:,} | {step_s:.3f} | {epoch_s:.0f} | {step_s / base_step:.2f} | "
                f"{f'{est:.0f}' if ref_s else ''} | {int(1200 // est)} |")  # fmt: skip
        print(line, flush=True)
        table.append(line)
    note = (f"{args.batches} timed steps of batch {BATCH} after 3 warm-up steps, {args.threads} threads, scaled to "
            f"{TRAIN:,} training + {VAL:,} validation images; on a machine shared with other jobs (run at nice 10): noisy, "
            "an upper bound more than an estimate"
            + (f"; the demo's fastest epoch in {args.reference}: {ref_s:.1f} s, times the step-time ratio" if ref_s else ""))  # fmt: skip
    print(append_section(REPO / "benchmarks" / "RESULTS.md", "Many-exit network: seconds per training epoch on the CPU", note, table))


if __name__ == "__main__":
    main()
