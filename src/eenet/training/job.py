"""Train a benchmark's multi-exit network as one call: open its data, build the model, train (resumably, on one
process or as one rank of a data-parallel run), write ``model.pt`` and the per-epoch metrics CSV.

    history = train_benchmark(TrainJob.from_dict(job), code=digest)   # or the dict itself

The workflow's rule train_multiexit calls it through :mod:`eenet.pipeline.trainjob`, which sets up the rule's log
file and passes ``code`` (the digest of the training code, for the checkpoint's fingerprint) and the run metadata;
``python -m eenet.pipeline.trainjob JOB.json`` is one rank of a distributed run.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from eenet.data import DatasetSpec
from eenet.data.prepare import open_benchmark
from eenet.io import file_sha256, write_csv
from eenet.models import build_model, prepare_model, save_model
from eenet.training.distributed import Ranks
from eenet.training.fingerprint import training_fingerprint
from eenet.training.inference import pick_device
from eenet.training.loop import TrainConfig, train_multiexit

__all__ = ["TrainJob", "train_benchmark"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainJob:
    """What to train and where to write it (the JSON-ready job of rule train_multiexit, ``job.json`` of a distributed run).

    ``data``: the dataset's ``manifest.json`` (written by ``download_dataset``; its files lie beside it); ``split``:
    the benchmark's ``split`` block (validation size, seed, sample caps); ``train``: its ``train`` block
    (:class:`~eenet.training.loop.TrainConfig`); ``threads``: CPU threads of the whole job (shared by its ranks);
    ``checkpoint``: the resumable checkpoint, rewritten every epoch; ``model``, ``metrics``: the outputs (``model.pt``,
    the metrics CSV, one row per epoch); ``log``: the log file the workflow's entry writes to (not read here).
    """

    dataset: str
    arch: str
    arch_kwargs: dict[str, Any]
    split: dict[str, Any]
    train: dict[str, Any]
    device: str
    max_length: int
    checkpoint: str
    data: str
    threads: int
    model: str
    metrics: str
    log: str | None = None

    @classmethod
    def from_dict(cls, job: Mapping[str, Any]) -> TrainJob:
        """The job of a dict with these keys (``log`` optional); an unknown or missing key is refused."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown, missing = set(job) - names, {f.name for f in dataclasses.fields(cls) if f.name != "log"} - set(job)
        if unknown or missing:
            raise ValueError(f"training job: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
        return cls(**dict(job))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict :meth:`from_dict` reads."""
        return dataclasses.asdict(self)


def _device(requested: str, ranks: Ranks) -> torch.device:
    device = pick_device(requested)
    if device.type == "cuda" and ranks.distributed:
        device = torch.device("cuda", ranks.local_rank % torch.cuda.device_count())  # one GPU per rank (SLURM may show each only its own)
        torch.cuda.set_device(device)
    return device


def train_benchmark(
    job: TrainJob | Mapping[str, Any],
    ranks: Ranks | None = None,
    *,
    code: str | None = None,
    run_metadata: Callable[[torch.device], Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Train as ``job`` says; rank 0 (the only rank of a single-process run) checkpoints and writes the outputs.

    ``ranks``: this process's place in a data-parallel run (default: a single process); distributed, the process
    group is initialised here (``train.backend``, ``auto``: NCCL on CUDA, else Gloo) and destroyed at the end.
    ``code``: the digest of the code that trains (the workflow's: :func:`eenet.pipeline.trainjob.weights_code_digest`),
    part of the checkpoint's fingerprint: a checkpoint of another recipe or other code is not resumed; default: the
    installed eenet's version. ``run_metadata``: ``device -> dict`` of what produced the model (device name, versions),
    stored in ``model.pt`` after the recipe's fields. Logs to the ``eenet`` loggers (the caller configures logging).

    Returns the per-epoch metrics (one dict per epoch, the metrics CSV's rows).
    """
    job = job if isinstance(job, TrainJob) else TrainJob.from_dict(job)
    ranks = ranks or Ranks()
    if code is None:
        from eenet import __version__

        code = f"eenet {__version__}"
    cfg = TrainConfig.from_dict(job.train)
    torch.set_num_threads(max(1, int(job.threads) // max(1, cfg.processes)))
    device = _device(job.device, ranks)
    if ranks.distributed:
        import torch.distributed as dist

        backend = cfg.backend if cfg.backend != "auto" else ("nccl" if device.type == "cuda" else "gloo")
        dist.init_process_group(backend, rank=ranks.rank, world_size=ranks.world_size)
        log.info("rank %d of %d (%s backend) on %s", ranks.rank, ranks.world_size, backend, device)
    try:
        return _train(job, cfg, device, ranks, code, run_metadata)
    finally:
        if ranks.distributed:
            torch.distributed.destroy_process_group()


def _train(
    job: TrainJob,
    cfg: TrainConfig,
    device: torch.device,
    ranks: Ranks,
    code: str,
    run_metadata: Callable[[torch.device], Mapping[str, Any]] | None,
) -> list[dict[str, Any]]:
    spec = DatasetSpec.from_manifest(job.data)  # the dataset as fetched: classes, image size, normalisation
    workers = max(1, int(job.threads) // cfg.processes)  # image decoding processes of each rank
    splits = open_benchmark(spec, Path(job.data).parent, job.arch, job.arch_kwargs, job.split, ("train", "val"), train=job.train,
                            max_length=job.max_length, workers=workers)  # fmt: skip
    torch.manual_seed(cfg.seed)  # the initial weights are part of the recipe (the same on every rank)
    model = prepare_model(build_model(job.arch, spec.num_classes, spec.in_channels, **job.arch_kwargs), device)
    if cfg.sync_batchnorm and ranks.distributed:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # batch statistics over every rank's samples
    recipe = {"arch": job.arch, "arch_kwargs": job.arch_kwargs, "split": job.split, "train": job.train, "max_length": job.max_length,
              "data": file_sha256(job.data)}  # fmt: skip
    fingerprint = training_fingerprint(recipe, code)  # a checkpoint of other code is not resumed
    per_rank = f", {ranks.world_size} ranks x {cfg.batch_size // ranks.world_size} samples per batch" if ranks.distributed else ""
    log.info(
        "training %s on %s: %d train / %d val samples, %d exits, %d parameters, device %s%s",
        job.arch, job.dataset, len(splits["train"]), len(splits["val"]), model.num_exits,
        sum(q.numel() for q in model.parameters()), device, per_rank,
    )  # fmt: skip

    def progress(history: list[dict[str, Any]]) -> None:
        """A progress line per epoch, and the metrics CSV rewritten so that it can be followed during training."""
        row = history[-1]
        accs = " ".join(f"exit{k}={row[f'val_acc_exit{k}']:.4f}" for k in range(model.num_exits))
        log.info("epoch %d/%d  loss %.4f  lr %.3g  val acc %s  (%.1f s)", row["epoch"], cfg.epochs, row["train_loss"], row["lr"], accs,
                 row["seconds"])  # fmt: skip
        write_csv(job.metrics, history)

    on_epoch = progress if ranks.main else None
    history = train_multiexit(model, splits["train"], splits["val"], cfg, job.checkpoint, fingerprint, device, on_epoch, ranks)
    if ranks.main:
        write_csv(job.metrics, history)
        meta = {"arch": job.arch, "arch_kwargs": job.arch_kwargs, "num_classes": spec.num_classes, "in_channels": spec.in_channels,
                "dataset": job.dataset, "max_length": job.max_length, "fingerprint": fingerprint,
                **(run_metadata(device) if run_metadata is not None else {})}  # fmt: skip
        if ranks.distributed:
            meta["ranks"] = ranks.world_size
        plain = model.cpu().to(memory_format=torch.contiguous_format)
        save_model(job.model, plain, meta)
        log.info("saved %s", job.model)
    return history
