"""Data-parallel training on several processes with PyTorch's own engine (``torch.distributed``,
``DistributedDataParallel``): who this process is, which samples it trains on, and how the ranks are started.

- :class:`Ranks` -- rank, local rank and world size of this process (from ``torchrun``'s or SLURM's variables).
- :func:`rank_batches` -- the distributed sampler: one seeded permutation per epoch, drawn identically by every
  rank, cut into global batches of ``train.batch_size``; rank ``r`` takes the ``r``-th contiguous piece of each. Every
  training sample is used exactly once per epoch across the ranks (no padding, no repeats).
- :func:`launch` -- start ``processes`` ranks per node running ``python -m <module> JOB.json`` (the workflow's
  ``eenet.pipeline.trainjob``): through
  ``torchrun --standalone`` on one machine, or ``srun`` inside a SLURM allocation (one task per rank, across
  ``nodes``). A rank that dies stops the run with :class:`RankFailedError`, which names it.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["Ranks", "RankFailedError", "rank_batches", "launch", "launch_command", "failed_rank"]

log = logging.getLogger(__name__)


class RankFailedError(RuntimeError):
    """A rank of a distributed training run died or failed; the others were stopped."""


@dataclass(frozen=True)
class Ranks:
    """This process's place in a distributed run: ``rank`` in ``0..world_size-1``, ``local_rank`` on its node."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that logs, writes checkpoints and outputs."""
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Ranks:
        """From ``RANK`` / ``LOCAL_RANK`` / ``WORLD_SIZE`` (torchrun), else ``SLURM_PROCID`` / ``SLURM_LOCALID`` /
        ``SLURM_NTASKS`` (srun), else a single process."""
        env = os.environ
        if "RANK" in env and "WORLD_SIZE" in env:
            return cls(int(env["RANK"]), int(env.get("LOCAL_RANK", 0)), int(env["WORLD_SIZE"]))
        if "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
            return cls(int(env["SLURM_PROCID"]), int(env.get("SLURM_LOCALID", 0)), int(env["SLURM_NTASKS"]))
        return cls()


def rank_batches(n: int, batch_size: int, ranks: Ranks, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, float]]:
    """This rank's part of every global batch of one epoch: ``(indices int64 [b], weight)``.

    The permutation of ``range(n)`` is drawn from ``generator`` (the same state on every rank) and cut into batches of
    ``batch_size``; each batch into ``world_size`` contiguous pieces (sizes differing by at most one). ``weight`` =
    ``b * world_size / B`` scales this rank's mean loss so that the gradients DistributedDataParallel averages equal
    the gradient of the global batch's mean loss. A short last batch is shared by fewer ranks, two samples each at
    least (BatchNorm cannot train on one); a rank without a piece gets the batch's first sample twice with weight 0
    (it must still take part in the gradient exchange).
    """
    order = torch.randperm(n, generator=generator)
    for batch in order.split(batch_size):
        # at least 2 samples per rank where the batch allows (BatchNorm cannot train on one sample), so a short last
        # batch goes to the first ranks only
        sharing = max(1, min(ranks.world_size, batch.numel() // 2))
        if ranks.rank >= sharing:
            yield batch[:1].repeat(2), 0.0
        else:
            piece = torch.tensor_split(batch, sharing)[ranks.rank]
            yield piece, piece.numel() * ranks.world_size / batch.numel()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _slurm_tasks(job_id: str) -> int:
    """Tasks of a SLURM job (0 when scontrol cannot say): srun starts the ranks only where the job has one per rank."""
    try:
        out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    m = re.search(r"NumTasks=(\d+)", out)
    return int(m.group(1)) if m else 0


def launch_command(job_file: str | Path, processes: int, nodes: int, threads: int, module: str) -> tuple[list[str], dict[str, str]]:
    """The command (and environment) that starts ``processes`` x ``nodes`` ranks of ``python -m <module> job_file``.

    Inside a SLURM job with a task per rank (the SLURM executor submits it so): ``srun`` with one task per rank
    (``--kill-on-bad-exit``: a rank that dies ends the step), the first node of the allocation as the rendezvous.
    Elsewhere (a machine of one's own, or a one-task SLURM job running Snakemake locally): ``torchrun --standalone``
    with ``processes`` workers (one machine only).
    """
    src = str(Path(__file__).resolve().parents[1])  # the package importable by every rank, installed or not
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, threads // processes)),
           "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)}  # fmt: skip
    worker = [sys.executable, "-m", module, str(job_file)]
    if os.environ.get("SLURM_JOB_ID") and _slurm_tasks(os.environ["SLURM_JOB_ID"]) >= processes * nodes:
        nodelist = os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST")
        if not nodelist:  # Snakemake's job step keeps only the job id of the SLURM variables
            nodelist = subprocess.run(
                ["squeue", "-h", "-j", os.environ["SLURM_JOB_ID"], "-o", "%N"], capture_output=True, text=True
            ).stdout.strip()
        nodelist = nodelist or socket.gethostname()
        hosts = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True).stdout.split()
        env["MASTER_ADDR"] = hosts[0] if hosts else socket.gethostname()
        env["MASTER_PORT"] = str(20000 + int(os.environ["SLURM_JOB_ID"]) % 20000)
        cmd = ["srun", f"--nodes={nodes}", f"--ntasks={processes * nodes}", f"--ntasks-per-node={processes}", "--kill-on-bad-exit=1",
               "--label", *worker]  # fmt: skip
        return cmd, env
    if nodes > 1:
        raise ValueError(f"train.nodes = {nodes}: training on several nodes runs inside a SLURM allocation (profiles/slurm)")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        "--max-restarts=0",
        "-m",
        module,
        str(job_file),
    ]
    return cmd, env


def failed_rank(output: str) -> str | None:
    """Which rank failed and how, from torchrun's failure report (its root cause, the first rank that failed; the others
    were then stopped) or srun's messages (``None`` when neither says)."""
    output = output[output.find("Root Cause") :] if "Root Cause" in output else output
    m = re.search(r"rank\s*:\s*(\d+)\s*\(local_rank:\s*(\d+)\)\s*\n\s*exitcode\s*:\s*(-?\d+)", output)
    if m:
        rank, local, code = int(m.group(1)), int(m.group(2)), int(m.group(3))
        how = f"killed by {signal.Signals(-code).name}" if code < 0 and -code in signal.valid_signals() else f"exit code {code}"
        return f"rank {rank} (local rank {local}) {how}"
    m = re.search(r"task (\d+): ([A-Za-z ]+)", output)
    if m:
        return f"rank {m.group(1)} {m.group(2).strip().lower()}"
    return None


def launch(job_file: str | Path, processes: int, nodes: int, threads: int, module: str, checkpoint: str | Path | None = None) -> None:
    """Run the ranks (:func:`launch_command`; ``module``: what each rank runs, ``python -m <module> job_file``) to the
    end, their output passed through to stderr.

    Raises:
        RankFailedError: a rank died or failed; the message names it and the epoch the last checkpoint holds.
    """
    cmd, env = launch_command(job_file, processes, nodes, threads, module)
    log.info("starting %d ranks (%d per node on %d node(s)): %s", processes * nodes, processes, nodes, " ".join(cmd))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stderr.write(line)
        tail = (tail + [line])[-200:]
    if proc.wait() != 0:
        out = "".join(tail)
        log.error("the ranks' last output:\n%s", "".join(tail[-40:]))
        who = failed_rank(out) or f"a rank failed (launcher exit code {proc.returncode})"
        kept = ""
        if checkpoint is not None and Path(checkpoint).exists():
            from eenet.io import load_checkpoint

            kept = f"; {checkpoint} holds epoch {int(load_checkpoint(checkpoint)['epoch'])}: the next run resumes from it"
            kept += " (with the same code and config)"
        raise RankFailedError(f"distributed training stopped: {who}; the other ranks were stopped{kept}")
