"""Training images/s of the pipeline's trainer (eenet.training.loop.train_multiexit) against a plain PyTorch loop.

    python benchmarks/train_throughput.py --device cuda [--arch resnet56_3 densenet121_4] [--images 20000]

Same model, same batch size, same precision (bf16 autocast on CUDA), same loss (the paper's exit weights),
CIFAR-shaped random images held in device memory for both. The trainer also augments each batch (crop + flip,
on the device), checkpoints after the epoch and evaluates a 512-image validation split: that is what the
pipeline runs, so it counts. One warm-up epoch each, then the median of ``--epochs`` timed epochs.
Appends a table to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]

from _results import append_section  # noqa: E402

from eenet.data import ImageSplit  # noqa: E402
from eenet.measure.costs import sync_device as sync  # noqa: E402
from eenet.models import build_model, prepare_model  # noqa: E402
from eenet.pipeline.logs import device_name  # noqa: E402
from eenet.training.loop import TrainConfig, exit_weights, multiexit_loss, train_multiexit  # noqa: E402

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


def pipeline_epoch_s(arch: str, images: torch.Tensor, labels: torch.Tensor, batch: int, device: torch.device, epochs: int) -> float:
    labels = labels.cpu()  # a split keeps its labels on the CPU; the images stay in device memory
    train = ImageSplit(images, labels, MEAN, STD, pad=4, flip=True)
    val = ImageSplit(images[:512], labels[:512], MEAN, STD)
    torch.manual_seed(0)
    model = prepare_model(build_model(arch, 100, 3), device)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for e in range(epochs + 1):  # one more epoch each time: the trainer resumes from its checkpoint
            cfg = TrainConfig(epochs=e + 1, batch_size=batch, lr=0.05, milestones=[1000])
            sync(device)
            t0 = time.perf_counter()
            train_multiexit(model, train, val, cfg, Path(tmp) / "ckpt.pt", "bench", device)
            sync(device)
            times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def plain_epoch_s(arch: str, images: torch.Tensor, labels: torch.Tensor, batch: int, device: torch.device, epochs: int) -> float:
    torch.manual_seed(0)
    model = prepare_model(build_model(arch, 100, 3), device).train()
    x_all = (images.float() / 255 - torch.tensor(MEAN, device=device).view(1, -1, 1, 1)) / torch.tensor(STD, device=device).view(
        1, -1, 1, 1
    )
    if device.type == "cuda":
        x_all = x_all.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    weights = exit_weights(model.num_exits)
    times = []
    for _ in range(epochs + 1):
        sync(device)
        t0 = time.perf_counter()
        for idx in torch.randperm(len(labels), device=device).split(batch):
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(x_all[idx])
            loss = multiexit_loss([z.float() for z in logits], labels[idx], weights, False)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", nargs="+", default=["resnet56_3", "densenet121_4"])
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "RESULTS.md"))
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8, generator=g).to(device)
    labels = torch.randint(0, 100, (args.images,), generator=g).to(device)
    lines = [
        "| model | pipeline trainer (images/s) | plain loop (images/s) | pipeline / plain |",
        "|---|---|---|---|",
    ]
    for arch in args.arch:
        pipe = args.images / pipeline_epoch_s(arch, images, labels, args.batch, device, args.epochs)
        plain = args.images / plain_epoch_s(arch, images, labels, args.batch, device, args.epochs)
        lines.append(f"| {arch} | {pipe:,.0f} | {plain:,.0f} | {pipe / plain:.2f} |")
        print(lines[-1], flush=True)
    note = (f"{args.images} random 3x32x32 images in device memory, batch {args.batch}, bf16 autocast on CUDA; "
            f"median of {args.epochs} epochs after a warm-up epoch.")  # fmt: skip
    print(append_section(args.out, f"Training throughput — {device_name(device)}, torch {torch.__version__}", note, lines))


if __name__ == "__main__":
    main()
