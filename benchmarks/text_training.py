"""Where an epoch of a text benchmark goes: tokenising, training steps, the validation pass.

    python benchmarks/text_training.py [--bench rotten_tomatoes] [--steps 20] [--threads 2]

Uses the pipeline's own pieces on the benchmark's real data (data/<dataset>/, made by the download_dataset rule):
eenet.data.prepare.open_benchmark (tokenising), the model builder, the recipe's optimizer and schedule, the multi-exit
loss, and eenet.training.inference.predict_probs for the validation pass the trainer runs after every epoch. Training steps
(forward + backward + optimizer step, batch of the recipe) are timed after two warm-up steps, median of --steps, for
the pipeline's batches (cut to the longest snippet of the batch) and for batches padded to max_length. The epoch
estimate is steps per epoch x median step + one validation pass; results/<bench>/train_metrics.csv, when a run made
it, gives the epochs the pipeline actually took. Appends a table to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]

from _results import append_section  # noqa: E402

from eenet.data import DATASETS  # noqa: E402
from eenet.data.prepare import open_benchmark  # noqa: E402
from eenet.models import build_model, prepare_model  # noqa: E402
from eenet.pipeline.logs import device_name  # noqa: E402
from eenet.training.inference import predict_probs  # noqa: E402
from eenet.training.loop import TrainConfig, exit_weights, make_optimizer, multiexit_loss  # noqa: E402


def step_times(model, batches, cfg: TrainConfig, steps: int, per_epoch: int) -> list[float]:
    """Seconds of each of ``steps`` training steps on ``batches`` (after two warm-up steps)."""
    opt, sched, per_batch = make_optimizer(model, cfg, per_epoch)
    weights = exit_weights(model.num_exits)
    model.train()
    out = []
    for i, (x, y) in enumerate(batches):
        t0 = time.perf_counter()
        loss = multiexit_loss(model(x), y, weights, False)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if per_batch:
            sched.step()
        if i >= 2:
            out.append(time.perf_counter() - t0)
        if len(out) == steps:
            break
    return out


def padded(batches, length: int):
    """The same batches padded to ``length`` tokens (what a tokenizer's padding='max_length' gives)."""
    for x, y in batches:
        extra = length - x["input_ids"].shape[1]
        yield {k: torch.nn.functional.pad(v, (0, extra)) for k, v in x.items()}, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="rotten_tomatoes")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "RESULTS.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    b = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["benchmarks"][args.bench]
    cfg = TrainConfig.from_dict(b["train"])
    max_length = b.get("max_length", 128)
    root = REPO / "data" / b["dataset"]
    t0 = time.perf_counter()
    splits = open_benchmark(b["dataset"], root, b["arch"], b.get("arch_kwargs", {}), b["split"], ("train", "val"), train=b["train"],
                            max_length=max_length)  # fmt: skip
    t_open = time.perf_counter() - t0
    train, val = splits["train"], splits["val"]
    per_epoch = math.ceil(len(train) / cfg.batch_size)
    lengths = train.attention_mask.sum(dim=1).float()
    torch.manual_seed(0)
    model = prepare_model(build_model(b["arch"], DATASETS[b["dataset"]].num_classes, None, **b.get("arch_kwargs", {})), "cpu")
    gen = torch.Generator().manual_seed(0)
    batches = list(train.batches(cfg.batch_size, torch.device("cpu"), shuffle=True, generator=gen, augment=True))[: args.steps + 2]
    cut = step_times(model, batches, cfg, args.steps, per_epoch)
    full = step_times(model, padded(batches, max_length), cfg, args.steps, per_epoch)
    t0 = time.perf_counter()
    predict_probs(model, val, cfg.eval_batch_size, "cpu")
    t_val = time.perf_counter() - t0
    widths = [x["input_ids"].shape[1] for x, _ in batches[2:]]
    metrics = REPO / "results" / args.bench / "train_metrics.csv"
    took = [float(r["seconds"]) for r in csv.DictReader(metrics.open())] if metrics.exists() else []
    rows = [
        ("tokenise train + val (open_benchmark)", f"{t_open:.1f} s"),
        ("snippet length, tokens (mean / max)", f"{lengths.mean():.1f} / {int(lengths.max())}"),
        ("batch width, pipeline batches (median)", f"{statistics.median(widths):.0f} tokens"),
        (f"training step, batch {cfg.batch_size}, pipeline batches (median)", f"{statistics.median(cut):.3f} s"),
        (f"training step, batch {cfg.batch_size}, padded to {max_length} (median)", f"{statistics.median(full):.3f} s"),
        (f"validation pass ({len(val)} snippets)", f"{t_val:.1f} s"),
        (f"epoch estimate ({per_epoch} steps + validation)", f"{(per_epoch * statistics.median(cut) + t_val) / 60:.1f} min"),
        ("epochs the pipeline took (train_metrics.csv)", ", ".join(f"{s / 60:.1f}" for s in took) + " min" if took else "(no run)"),
    ]
    table = ["| what | measured |", "|---|---|", *[f"| {a} | {v} |" for a, v in rows]]
    print("\n".join(table))
    append_section(
        args.out,
        f"Text training, {args.bench} — {device_name(torch.device('cpu'))}, {args.threads} thread(s), torch {torch.__version__}",
        f"{len(train)} training snippets, {args.steps} timed steps each way",
        table,
    )


if __name__ == "__main__":
    main()
