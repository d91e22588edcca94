"""Rule train_multiexit's job, the workflow's side of it: the rule's log file and the digest of the training code,
around the library call that trains (:func:`eenet.training.job.train_benchmark`) -- in the rule's own process, or
as one rank of a data-parallel run (``python -m eenet.pipeline.trainjob JOB.json``, started by
:func:`eenet.training.distributed.launch` with ``torchrun`` or ``srun``).

A job is a JSON-ready dict (:class:`eenet.training.job.TrainJob`): ``dataset``, ``arch``, ``arch_kwargs``,
``split``, ``train``, ``device``, ``max_length``, ``checkpoint``, ``data`` (the dataset's manifest), ``log``,
``threads``, ``model`` and ``metrics`` (the outputs). The checkpoint's fingerprint covers the recipe and the library
code that trains (:func:`weights_code_digest`).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from eenet.pipeline.codeinputs import code_files
from eenet.pipeline.logs import run_metadata, setup_logging
from eenet.training.distributed import Ranks
from eenet.training.fingerprint import code_digest
from eenet.training.job import train_benchmark

__all__ = ["run_training", "weights_code_digest", "main"]


def weights_code_digest(src: str | Path | None = None) -> str:
    """The digest of the library code the training job trains with (:func:`eenet.training.fingerprint.code_digest`):
    every package module :mod:`eenet.training.job` imports, transitively, less that module itself and the workflow
    layer (``eenet.pipeline``: logging, config, this module), whose edits cannot change a weight. The job module is
    left out as it was when its code lay in this module: the digest -- and so every checkpoint's fingerprint -- is
    the same as before the move. ``src``: the source root (default: this checkout's)."""
    src = Path(src) if src is not None else Path(__file__).resolve().parents[2]
    job = src / "eenet" / "training" / "job.py"
    files = [f for f in code_files(job, src) if f != job.resolve() and f.relative_to(src.resolve()).parts[:2] != ("eenet", "pipeline")]
    return code_digest(files, root=src.resolve())


def run_training(job: dict[str, Any], ranks: Ranks | None = None) -> list[dict[str, Any]]:
    """Train as the job says (:func:`eenet.training.job.train_benchmark`); rank 0 (the only rank of a single-process
    run) logs to the job's ``log`` file, checkpoints and writes the outputs. Returns the per-epoch metrics."""
    ranks = ranks or Ranks()
    if ranks.main:
        setup_logging(job["log"], append=ranks.distributed)  # the launcher's lines come first
    else:
        logging.basicConfig(level=logging.WARNING, format=f"[rank {ranks.rank}] %(levelname)s %(name)s: %(message)s", force=True)
    return train_benchmark(job, ranks, code=weights_code_digest(), run_metadata=run_metadata)


def main(argv: list[str]) -> None:
    """``python -m eenet.pipeline.trainjob JOB.json``: one rank of a distributed run (rank and world from the environment)."""
    with open(argv[0]) as fh:
        job = json.load(fh)
    run_training(job, Ranks.from_env())


if __name__ == "__main__":
    main(sys.argv[1:])
