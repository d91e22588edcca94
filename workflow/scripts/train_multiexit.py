"""Rule train_multiexit: train the benchmark's multi-exit network (resumable), write model + metrics."""

import hashlib
import json
from pathlib import Path

import _eenet_path  # noqa: F401  (src/ importable without an install, e.g. under --sdm conda)
import torch

from eenet.data import DATASETS, load_images, split_indices
from eenet.io import file_sha256, write_csv
from eenet.models import build_model, save_model
from eenet.training import TrainConfig, pick_device, train_multiexit
from eenet.workflow import run_metadata, setup_logging

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p = snakemake.params
log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
spec = DATASETS[p.dataset]
root = Path(snakemake.input.data).parent
images, labels = load_images(p.dataset, root, train=True)
train_idx, val_idx = split_indices(images.shape[0], p.split["val_size"], p.split["seed"])
if p.split.get("max_train"):
    train_idx = train_idx[: p.split["max_train"]]
cfg = TrainConfig.from_dict(p.train)
device = pick_device(p.device)
torch.manual_seed(cfg.seed)  # the initial weights are part of the recipe
model = build_model(p.arch, spec.num_classes, spec.in_channels, **p.arch_kwargs)
recipe = {"arch": p.arch, "arch_kwargs": p.arch_kwargs, "split": p.split, "train": p.train, "data": file_sha256(snakemake.input.data)}
fingerprint = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
log.info(
    "training %s on %s: %d train / %d val images, %d exits, %d parameters, device %s",
    p.arch, p.dataset, len(train_idx), len(val_idx), model.num_exits, sum(q.numel() for q in model.parameters()), device,
)  # fmt: skip


def progress(history: list[dict]) -> None:
    """A progress line per epoch, and the metrics CSV rewritten so that it can be followed during training."""
    row = history[-1]
    accs = " ".join(f"exit{k}={row[f'val_acc_exit{k}']:.4f}" for k in range(model.num_exits))
    log.info(
        "epoch %d/%d  loss %.4f  lr %.3g  val acc %s  (%.1f s)",
        row["epoch"],
        cfg.epochs,
        row["train_loss"],
        row["lr"],
        accs,
        row["seconds"],
    )
    write_csv(snakemake.output.metrics, history)


history = train_multiexit(
    model,
    (images[train_idx], labels[train_idx]),
    (images[val_idx], labels[val_idx]),
    spec.mean,
    spec.std,
    cfg,
    p.checkpoint,
    fingerprint,
    device,
    on_epoch=progress,
)
write_csv(snakemake.output.metrics, history)
meta = {"arch": p.arch, "arch_kwargs": p.arch_kwargs, "num_classes": spec.num_classes, "in_channels": spec.in_channels,
        "dataset": p.dataset, "fingerprint": fingerprint, **run_metadata(device)}  # fmt: skip
save_model(snakemake.output.model, model.cpu(), meta)
log.info("saved %s", snakemake.output.model)
