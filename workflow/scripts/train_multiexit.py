"""Rule train_multiexit: train the benchmark's multi-exit network (resumable), write model + metrics."""

import _eenet_path  # noqa: F401  (src/ importable without an install, e.g. under --sdm conda)
import torch

from eenet.benchmark import open_benchmark
from eenet.data import DatasetSpec
from eenet.io import file_sha256, write_csv
from eenet.models import build_model, prepare_model, save_model
from eenet.training import TrainConfig, pick_device, train_multiexit, training_fingerprint
from eenet.workflow import data_root, run_metadata, setup_logging

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p = snakemake.params
log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
spec = DatasetSpec.from_manifest(snakemake.input.data)  # the dataset as fetched: classes, image size, normalisation
cfg = TrainConfig.from_dict(p.train)
device = pick_device(p.device)
splits = open_benchmark(spec, data_root(snakemake.input.data), p.arch, p.arch_kwargs, p.split, ("train", "val"),
                        train=p.train, max_length=p.max_length, workers=snakemake.threads)  # fmt: skip
torch.manual_seed(cfg.seed)  # the initial weights are part of the recipe
model = prepare_model(build_model(p.arch, spec.num_classes, spec.in_channels, **p.arch_kwargs), device)
recipe = {"arch": p.arch, "arch_kwargs": p.arch_kwargs, "split": p.split, "train": p.train, "max_length": p.max_length,
          "data": file_sha256(snakemake.input.data)}  # fmt: skip
fingerprint = training_fingerprint(recipe, snakemake.input.code)  # a checkpoint of other code is not resumed
log.info(
    "training %s on %s: %d train / %d val samples, %d exits, %d parameters, device %s",
    p.arch, p.dataset, len(splits["train"]), len(splits["val"]), model.num_exits, sum(q.numel() for q in model.parameters()), device,
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


history = train_multiexit(model, splits["train"], splits["val"], cfg, p.checkpoint, fingerprint, device, on_epoch=progress)
write_csv(snakemake.output.metrics, history)
meta = {"arch": p.arch, "arch_kwargs": p.arch_kwargs, "num_classes": spec.num_classes, "in_channels": spec.in_channels,
        "dataset": p.dataset, "max_length": p.max_length, "fingerprint": fingerprint, **run_metadata(device)}  # fmt: skip
save_model(snakemake.output.model, model.cpu().to(memory_format=torch.contiguous_format), meta)
log.info("saved %s", snakemake.output.model)
