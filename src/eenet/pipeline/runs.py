"""A benchmark's runs: one per training seed, each a benchmark of its own, and the ranks each run trains on.

A benchmark whose ``train.seed`` is a list (``[0, 1, 2]``) becomes one *run* per seed, named
``<bench>/seed<s>``: every stage (training, logits, latency, schedulers, evaluation, runtime, statistics, plot)
runs per run under ``results/<bench>/seed<s>/``, and ``results/<bench>/`` holds what aggregates them
(summary.csv with every seed's rows and the mean, stats.csv, curve.pdf with the mean and the min-max band).

The scheduler seed (``scheduler_seed``: EENet's initialisation and mini-batches, the held-out part of validation
of the search policies) is an integer used by every run, or a list paired with ``train.seed`` (run ``i`` trains
with ``train.seed[i]`` and fits its schedulers with ``scheduler_seed[i]``). A run trains on :func:`world_size` ranks.
Standard library only: the Snakefile imports it before any job.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["expand_seed_runs", "run_name", "world_size"]


def world_size(train: dict[str, Any]) -> int:
    """The data-parallel ranks a recipe trains on: ``processes`` per node x ``nodes`` (SLURM tasks, torchrun ranks)."""
    return int(train.get("processes", 1)) * int(train.get("nodes", 1))


def run_name(bench: str, train_seed: int) -> str:
    """The name (and the directory below ``results/``) of one seed's run of a benchmark."""
    return f"{bench}/seed{train_seed}"


def expand_seed_runs(benchmarks: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """``(runs, parents)``: every benchmark to run as one (its seeds integers), and for every benchmark with a list
    of seeds the names of its runs in seed order.

    A benchmark with integer seeds is its own run, unchanged. Raises ``ValueError`` (naming the benchmark) when
    ``scheduler_seed`` is a list but ``train.seed`` is not, or the two lists differ in length.
    """
    runs: dict[str, dict[str, Any]] = {}
    parents: dict[str, list[str]] = {}
    for name, b in benchmarks.items():
        train_seed = b.get("train", {}).get("seed", 0)
        sched_seed = b.get("scheduler_seed", 0)
        if not isinstance(train_seed, list):
            if isinstance(sched_seed, list):
                raise ValueError(
                    f"benchmark {name!r}: scheduler_seed is a list but train.seed is not; give train.seed a list of the "
                    "same length (run i trains with train.seed[i] and fits its schedulers with scheduler_seed[i])"
                )
            runs[name] = b
            continue
        if isinstance(sched_seed, list) and len(sched_seed) != len(train_seed):
            raise ValueError(
                f"benchmark {name!r}: train.seed has {len(train_seed)} seeds and scheduler_seed {len(sched_seed)}; "
                "lists are paired (run i uses both i-th seeds): give them one length, or scheduler_seed one integer"
            )
        parents[name] = []
        for i, t in enumerate(train_seed):
            run = copy.deepcopy(b)
            run["train"]["seed"] = t
            run["scheduler_seed"] = sched_seed[i] if isinstance(sched_seed, list) else sched_seed
            runs[run_name(name, t)] = run
            parents[name].append(run_name(name, t))
    return runs, parents
