"""Rule train_multiexit's work: train a benchmark's multi-exit network, write ``model.pt`` and the metrics CSV --
in the rule's own process, or as one rank of a data-parallel run (``python -m eenet.pipeline.trainjob JOB.json``, started by
:func:`eenet.training.distributed.launch` with ``torchrun`` or ``srun``).

A job is a JSON-ready dict: ``dataset``, ``arch``, ``arch_kwargs``, ``split``, ``train``, ``device``,
``max_length``, ``checkpoint``, ``data`` (the dataset's manifest), ``log``, ``threads``, ``model`` and ``metrics``
(the outputs). The checkpoint's fingerprint covers the recipe and the library code that trains
(:func:`weights_code_digest`).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import torch

from eenet.data import DatasetSpec
from eenet.data.prepare import open_benchmark
from eenet.io import file_sha256, write_csv
from eenet.models import build_model, prepare_model, save_model
from eenet.pipeline.codeinputs import code_files
from eenet.pipeline.logs import data_root, run_metadata, setup_logging
from eenet.training.distributed import Ranks
from eenet.training.fingerprint import code_digest, training_fingerprint
from eenet.training.inference import pick_device
from eenet.training.loop import TrainConfig, train_multiexit

__all__ = ["run_training", "weights_code_digest", "main"]


def weights_code_digest(src: str | Path | None = None) -> str:
    """The digest of the library code this job trains with (:func:`eenet.training.fingerprint.code_digest`): every
    package module the training job imports, transitively, less the workflow layer (``eenet.pipeline``: logging,
    config, this module), whose edits cannot change a weight. ``src``: the source root (default: this checkout's)."""
    src = Path(src) if src is not None else Path(__file__).resolve().parents[2]
    job = src / "eenet" / "pipeline" / "trainjob.py"
    files = [f for f in code_files(job, src) if f.relative_to(src).parts[:2] != ("eenet", "pipeline")]
    return code_digest(files, root=src)


def _device(requested: str, ranks: Ranks) -> torch.device:
    device = pick_device(requested)
    if device.type == "cuda" and ranks.distributed:
        device = torch.device("cuda", ranks.local_rank % torch.cuda.device_count())  # one GPU per rank (SLURM may show each only its own)
        torch.cuda.set_device(device)
    return device


def run_training(job: dict[str, Any], ranks: Ranks | None = None) -> list[dict[str, Any]]:
    """Train as the job says; rank 0 (the only rank of a single-process run) logs, checkpoints and writes the outputs.

    Returns the per-epoch metrics."""
    ranks = ranks or Ranks()
    if ranks.main:
        log = setup_logging(job["log"], append=ranks.distributed)  # the launcher's lines come first
    else:
        logging.basicConfig(level=logging.WARNING, format=f"[rank {ranks.rank}] %(levelname)s %(name)s: %(message)s", force=True)
        log = logging.getLogger("eenet")
    cfg = TrainConfig.from_dict(job["train"])
    torch.set_num_threads(max(1, int(job["threads"]) // max(1, cfg.processes)))
    device = _device(job["device"], ranks)
    if ranks.distributed:
        import torch.distributed as dist

        backend = cfg.backend if cfg.backend != "auto" else ("nccl" if device.type == "cuda" else "gloo")
        dist.init_process_group(backend, rank=ranks.rank, world_size=ranks.world_size)
        log.info("rank %d of %d (%s backend) on %s", ranks.rank, ranks.world_size, backend, device)
    try:
        return _train(job, cfg, device, ranks, log)
    finally:
        if ranks.distributed:
            torch.distributed.destroy_process_group()


def _train(job: dict[str, Any], cfg: TrainConfig, device: torch.device, ranks: Ranks, log: logging.Logger) -> list[dict[str, Any]]:
    spec = DatasetSpec.from_manifest(job["data"])  # the dataset as fetched: classes, image size, normalisation
    workers = max(1, int(job["threads"]) // cfg.processes)  # image decoding processes of each rank
    splits = open_benchmark(spec, data_root(job["data"]), job["arch"], job["arch_kwargs"], job["split"], ("train", "val"),
                            train=job["train"], max_length=job["max_length"], workers=workers)  # fmt: skip
    torch.manual_seed(cfg.seed)  # the initial weights are part of the recipe (the same on every rank)
    model = prepare_model(build_model(job["arch"], spec.num_classes, spec.in_channels, **job["arch_kwargs"]), device)
    if cfg.sync_batchnorm and ranks.distributed:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # batch statistics over every rank's samples
    recipe = {"arch": job["arch"], "arch_kwargs": job["arch_kwargs"], "split": job["split"], "train": job["train"],
              "max_length": job["max_length"], "data": file_sha256(job["data"])}  # fmt: skip
    fingerprint = training_fingerprint(recipe, weights_code_digest())  # a checkpoint of other code is not resumed
    per_rank = f", {ranks.world_size} ranks x {cfg.batch_size // ranks.world_size} samples per batch" if ranks.distributed else ""
    log.info(
        "training %s on %s: %d train / %d val samples, %d exits, %d parameters, device %s%s",
        job["arch"], job["dataset"], len(splits["train"]), len(splits["val"]), model.num_exits,
        sum(q.numel() for q in model.parameters()), device, per_rank,
    )  # fmt: skip

    def progress(history: list[dict[str, Any]]) -> None:
        """A progress line per epoch, and the metrics CSV rewritten so that it can be followed during training."""
        row = history[-1]
        accs = " ".join(f"exit{k}={row[f'val_acc_exit{k}']:.4f}" for k in range(model.num_exits))
        log.info("epoch %d/%d  loss %.4f  lr %.3g  val acc %s  (%.1f s)", row["epoch"], cfg.epochs, row["train_loss"], row["lr"], accs,
                 row["seconds"])  # fmt: skip
        write_csv(job["metrics"], history)

    history = train_multiexit(
        model,
        splits["train"],
        splits["val"],
        cfg,
        job["checkpoint"],
        fingerprint,
        device,
        on_epoch=progress if ranks.main else None,
        ranks=ranks,
    )
    if ranks.main:
        write_csv(job["metrics"], history)
        meta = {"arch": job["arch"], "arch_kwargs": job["arch_kwargs"], "num_classes": spec.num_classes, "in_channels": spec.in_channels,
                "dataset": job["dataset"], "max_length": job["max_length"], "fingerprint": fingerprint, **run_metadata(device)}  # fmt: skip
        if ranks.distributed:
            meta["ranks"] = ranks.world_size
        plain = model.cpu().to(memory_format=torch.contiguous_format)
        save_model(job["model"], plain, meta)
        log.info("saved %s", job["model"])
    return history


def main(argv: list[str]) -> None:
    """``python -m eenet.pipeline.trainjob JOB.json``: one rank of a distributed run (rank and world from the environment)."""
    with open(argv[0]) as fh:
        job = json.load(fh)
    run_training(job, Ranks.from_env())


if __name__ == "__main__":
    main(sys.argv[1:])
