"""Training a multi-exit network with the paper's recipe, resumable from a per-epoch checkpoint.

Loss: ``sum_j w_j * CE(logits_j, y)`` with ``w_j = j / (K (K + 1))`` (j = 1..K); from ``distill_start``
of training on, every earlier exit also distils from the last one (KL at temperature T, weight
``distill_weight * T^2``, teacher detached).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from eenet.data import Split
from eenet.io import load_checkpoint, save_checkpoint
from eenet.models import MultiExitNetwork
from eenet.training.distributed import Ranks, rank_batches
from eenet.training.inference import predict_probs

__all__ = ["TrainConfig", "exit_weights", "multiexit_loss", "make_optimizer", "train_multiexit"]

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """The training recipe (every field is a config key under ``train``)."""

    epochs: int = 150
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    milestones: list[int] = field(default_factory=lambda: [50, 100])
    gamma: float = 0.1
    distill_start: float = 0.75
    distill_temperature: float = 3.0
    distill_weight: float = 0.01
    augment_pad: int = 4
    augment_flip: bool = True
    seed: int = 0
    eval_batch_size: int = 1000
    optimizer: str = "sgd"
    lr_schedule: str = "multistep"
    warmup_ratio: float = 0.0
    processes: int = 1
    nodes: int = 1
    sync_batchnorm: bool = False
    backend: str = "auto"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def exit_weights(num_exits: int) -> list[float]:
    """The paper's exit weights ``j / (K (K + 1))`` for ``j = 1..K`` (they sum to 1/2); ``[1.0]`` for one exit: a plain
    network (the frontier's networks trained alone) is trained on plain cross-entropy, as a user trains one, not on
    half of it (half the loss is half the learning rate against the same weight decay)."""
    k = num_exits
    if k == 1:
        return [1.0]
    return [j / (k * (k + 1)) for j in range(1, k + 1)]


def multiexit_loss(
    logits: list[torch.Tensor],
    labels: torch.Tensor,
    weights: list[float],
    distill: bool,
    temperature: float = 3.0,
    distill_weight: float = 0.01,
) -> torch.Tensor:
    """Weighted cross-entropy over exits (each logits ``[B, C]``), plus distillation from the last exit."""
    loss = sum(w * F.cross_entropy(z, labels) for w, z in zip(weights, logits, strict=True))
    if distill and len(logits) > 1:
        teacher = F.softmax(logits[-1].detach() / temperature, dim=1)
        for z in logits[:-1]:
            student = F.log_softmax(z / temperature, dim=1)
            loss = loss + distill_weight * temperature**2 * F.kl_div(student, teacher, reduction="batchmean")
    return loss


def _evaluate(
    model: MultiExitNetwork, split: Split, batch_size: int, device: torch.device, ranks: Ranks | None = None
) -> tuple[float, list[float]]:
    """Negative log-likelihood of the last exit and the accuracy of every exit on ``split``. Distributed: each rank
    takes a contiguous part of the split and the sums are added up across the ranks (the same figures as one process,
    up to the order of summation)."""
    if ranks is None or not ranks.distributed:
        probs = predict_probs(model, split, batch_size, device)
        labels = split.labels
        nll = -torch.log(probs[-1].gather(1, labels.view(-1, 1)).clamp_min(1e-12)).mean().item()
        acc = (probs.argmax(dim=2) == labels.view(1, -1)).float().mean(dim=1).tolist()
        return nll, acc
    import torch.distributed as dist

    part = split.subset(torch.tensor_split(torch.arange(len(split)), ranks.world_size)[ranks.rank])
    probs = predict_probs(model, part, batch_size, device)
    labels = part.labels
    sums = torch.cat([
        -torch.log(probs[-1].gather(1, labels.view(-1, 1)).clamp_min(1e-12)).sum().view(1).double(),
        (probs.argmax(dim=2) == labels.view(1, -1)).sum(dim=1).double(),
    ]).to(device)  # fmt: skip
    dist.all_reduce(sums)
    sums = sums.cpu() / len(split)
    return float(sums[0]), sums[1:].tolist()


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, steps_per_epoch: int) -> tuple[torch.optim.Optimizer, Any, bool]:
    """``(optimizer, lr scheduler, step the scheduler per batch?)`` for the recipe.

    ``sgd`` (momentum, weight decay) or ``adamw``; ``multistep`` (x ``gamma`` at each epoch of
    ``milestones``, stepped per epoch) or ``linear`` (warm-up over ``warmup_ratio`` of the steps, then
    linear decay to 0, stepped per batch -- the usual BERT fine-tuning schedule).
    """
    if cfg.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}; use 'sgd' or 'adamw'")
    if cfg.lr_schedule == "multistep":
        return opt, torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.gamma), False
    if cfg.lr_schedule == "linear":
        total = max(cfg.epochs * steps_per_epoch, 1)
        warm = int(cfg.warmup_ratio * total)

        def factor(step: int) -> float:
            return (step + 1) / max(warm, 1) if step < warm else max(0.0, (total - step) / max(total - warm, 1))

        return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor), True
    raise ValueError(f"unknown lr_schedule {cfg.lr_schedule!r}; use 'multistep' or 'linear'")


def train_multiexit(
    model: MultiExitNetwork,
    train: Split,
    val: Split,
    cfg: TrainConfig,
    checkpoint: str | Path,
    fingerprint: str,
    device: torch.device,
    on_epoch: Callable[[list[dict[str, Any]]], None] | None = None,
    ranks: Ranks | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` in place; return the per-epoch metrics.

    Distributed (``ranks`` with a world size above 1; the process group initialised): the model is wrapped in
    DistributedDataParallel and each rank trains on its part of every global batch of ``cfg.batch_size``
    (:func:`eenet.training.distributed.rank_batches`); every rank resumes from the checkpoint, rank 0 alone writes it (after
    broadcasting its BatchNorm statistics, which the model's evaluation then uses on every rank). Each epoch checks
    that every training sample was used exactly once across the ranks.

    Args:
        train, val: the samples; ``train`` makes augmented batches (the recipe's crop and flip for images).
        checkpoint: written atomically after every epoch; if it exists and its ``fingerprint`` matches
            (same recipe, data and architecture), training resumes after its last complete epoch.
        on_epoch: called after each epoch's checkpoint with the metrics of every epoch so far, resumed
            ones included (for progress lines and the metrics CSV).

    Raises:
        FloatingPointError: a non-finite loss (the message names the epoch and batch); the last good
            checkpoint is left untouched.
    """
    ranks = ranks or Ranks()
    torch.manual_seed(cfg.seed)
    model.to(device)
    net: torch.nn.Module = model
    if ranks.distributed:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt, sched, per_batch = make_optimizer(model, cfg, math.ceil(len(train) / cfg.batch_size))
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    ckpt = Path(checkpoint)
    if ckpt.exists():
        state = load_checkpoint(ckpt)
        if state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["lr_scheduler"])
            gen.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            history = list(state["history"])
            start_epoch = int(state["epoch"])
            log.info("resuming from %s after epoch %d of %d", ckpt, start_epoch, cfg.epochs)
        else:
            log.info("ignoring checkpoint %s: it belongs to a different recipe, data, architecture or code", ckpt)
    weights = exit_weights(model.num_exits)
    distill_from = math.ceil(cfg.distill_start * cfg.epochs)
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        net.train()
        distill = epoch >= distill_from
        total, count = 0.0, 0
        for b, ((x, y), w) in enumerate(_epoch_batches(train, cfg, device, gen, ranks, epoch)):
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = net(x)
            loss = multiexit_loss([z.float() for z in logits], y, weights, distill, cfg.distill_temperature, cfg.distill_weight)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"non-finite training loss ({loss.item()}) at epoch {epoch + 1}, batch {b + 1}; "
                    f"checkpoint {ckpt} still holds epoch {len(history)}"
                )
            opt.zero_grad(set_to_none=True)
            (loss * w if ranks.distributed else loss).backward()
            opt.step()
            if per_batch:
                sched.step()
            if w > 0:
                total += loss.item() * y.shape[0]
                count += y.shape[0]
        lr = opt.param_groups[0]["lr"]
        if not per_batch:
            sched.step()
        if ranks.distributed:
            total, count = _sync_epoch(model, total, count, device)
        val_nll, val_acc = _evaluate(model, val, cfg.eval_batch_size, device, ranks)
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": total / max(count, 1),
            "val_nll_last_exit": val_nll,
            **{f"val_acc_exit{k}": a for k, a in enumerate(val_acc)},
            "distill": int(distill),
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        if ranks.main:
            save_checkpoint(
                ckpt,
                {
                    "fingerprint": fingerprint,
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "lr_scheduler": sched.state_dict(),
                    "generator": gen.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "history": history,
                },
            )
        if on_epoch is not None:
            on_epoch(history)
    return history


def _epoch_batches(
    train: Split, cfg: TrainConfig, device: torch.device, gen: torch.Generator, ranks: Ranks, epoch: int
) -> Iterator[tuple[tuple[Any, torch.Tensor], float]]:
    """``((inputs, labels), loss weight)`` of one epoch: the whole batches of a single process (the generator orders and
    augments), or this rank's part of each (the generator orders, identically on every rank; augmentation, dropout and
    the like draw from a stream of this rank and epoch, so that a resumed run draws what it would have)."""
    if not ranks.distributed:
        yield from ((xy, 1.0) for xy in train.batches(cfg.batch_size, device, shuffle=True, generator=gen, augment=True))
        return
    import torch.distributed as dist

    stream = cfg.seed * 1_000_003 + epoch * ranks.world_size + ranks.rank
    torch.manual_seed(stream)
    pieces = list(rank_batches(len(train), cfg.batch_size, ranks, gen))
    seen = torch.zeros(len(train), dtype=torch.int32)
    for idx, w in pieces:
        if w > 0:
            seen[idx] += 1
    batches = train.batches_of((idx for idx, _ in pieces), device, augment=True, generator=torch.Generator().manual_seed(stream))
    yield from zip(batches, (w for _, w in pieces), strict=True)
    seen = seen.to(device)
    dist.all_reduce(seen)
    if not bool((seen == 1).all()):
        raise RuntimeError(f"epoch {epoch + 1}: {int((seen != 1).sum())} training samples were not used exactly once across the ranks")
    log.info("epoch %d: each of the %d training samples used once across %d ranks", epoch + 1, len(train), ranks.world_size)


def _sync_epoch(model: MultiExitNetwork, total: float, count: int, device: torch.device) -> tuple[float, int]:
    """Across the ranks: the training loss sums added up, rank 0's BatchNorm statistics given to every rank."""
    import torch.distributed as dist

    sums = torch.tensor([total, float(count)], dtype=torch.float64, device=device)
    dist.all_reduce(sums)
    for buf in model.buffers():
        dist.broadcast(buf, 0)
    return float(sums[0]), int(sums[1])
