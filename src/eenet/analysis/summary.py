"""A benchmark's summary: every evaluated policy, every single exit and the measured runtime in one table
(summary.csv), and the captions of its figures."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from eenet.analysis.plotting import SUMMARY_FIELDS, add_measured, static_rows
from eenet.analysis.stats import correct_by_policy
from eenet.io import read_csv, read_json
from eenet.records import read_fitted_policy, read_logits_cache

__all__ = [
    "summary_rows", "summary_table", "curve_caption", "runtime_caption", "auc_by_method", "log_summary", "read_seed_runs",
    "seeds_caption",
]  # fmt: skip


def summary_rows(
    bench: str,
    evals: list[dict[str, Any]],
    probs: torch.Tensor,
    labels: torch.Tensor,
    costs_ms: list[float],
    flops: list[int],
    device: str,
    runtime: list[dict[str, str]],
    seed: Any,
) -> list[dict[str, Any]]:
    """The evaluations (``evaluations/<method>/<budget>.json``) by method and budget, then one row per single exit
    (``probs [K, N, C]``, ``labels [N]``: the test cache), each with its measured runtime (runtime.csv) and the seed."""
    rows = sorted(evals, key=lambda r: (r["method"], r["budget_ms"]))
    rows += static_rows(bench, probs, labels, costs_ms, flops, device)
    add_measured(rows, runtime)
    for r in rows:
        r["seed"] = seed
    return rows


def summary_table(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """summary.csv's rows: :data:`SUMMARY_FIELDS` of each row, lists (exit histograms) as JSON."""
    return [{k: (json.dumps(r[k]) if isinstance(r.get(k), list) else r.get(k, "")) for k in SUMMARY_FIELDS} for r in rows]


def curve_caption(
    meta: Mapping[str, Any], n_test: int, x_axis: str, runtime: list[dict[str, str]], plain: Mapping[str, float] | None, last_ms: float
) -> tuple[str, float | None]:
    """curve.pdf's caption and the plain network's cost on its x axis (cost.csv's, or the runtime's measured one when
    the x axis is the measured latency; ``None`` for a cost.csv written before the plain network was timed)."""
    caption = (
        f"Costs measured on {meta.get('device')} (batch {meta.get('batch_size')}, {meta.get('threads')} thread(s), "
        f"torch {meta.get('torch_version')}); policies fitted on validation, evaluated on {n_test} test samples."
    )
    plain_ms = plain["ms"] if plain else None
    if x_axis == "measured":
        n = runtime[0]["samples"] if runtime else "?"
        caption += f" x: the adaptive runtime's measured latency at batch 1 on {n} test samples (runtime.csv)."
        plain_ms = next((float(r["plain_ms"]) for r in runtime if r["batch_size"] == "1" and r.get("plain_ms")), None)
    if plain_ms is not None:
        caption += f" Dotted: the plain network (stages + last head, no early exit), {plain_ms / last_ms:.2f} of the last exit's cost."
    return caption, plain_ms


def runtime_caption(runtime: list[dict[str, str]]) -> str:
    """runtime.pdf's caption: where and how the runtime was timed."""
    rt = runtime[0] if runtime else {}
    return (
        f"Measured on {rt.get('device')} ({rt.get('threads')} thread(s), torch {rt.get('torch_version')}), {rt.get('samples')} test "
        "samples, mean per sample (per ten batches the median of the timed repeats); simulated = the runtime's exit histogram x "
        "cost.csv; speed-up over the plain network (every stage, the last head only: the network run without early exit)"
        + (  # runtime.csv with the whole test set's columns: a class-stratified random sample, the speed-up quoted for all
            " on the whole test set (the sample's measured/simulated x the test set's simulated cost); the samples: a random "
            "sample of the test set, stratified by class."
            if rt.get("speedup_vs_plain_test")
            else "."
        )
    )


def auc_by_method(stats: list[dict[str, Any]], seed: str | None = None) -> dict[str, float]:
    """Each policy's mean accuracy over the budget range (stats.csv's ``all`` rows with an AUC; ``seed``: only that
    seed's rows, e.g. ``mean`` of a seed study), for the legend of curve.pdf."""
    return {
        r["method"]: float(r["auc"])
        for r in stats
        if r["budget_value"] == "all" and str(r["auc"]) not in ("", "nan") and (seed is None or r.get("seed") == seed)
    }


def log_summary(log: logging.Logger, rows: list[dict[str, Any]]) -> None:
    """A line per row: accuracy and realised cost, or infeasible."""
    for r in rows:
        if r.get("infeasible"):
            log.info("%-14s budget %-6s infeasible", r["method"], r.get("budget_value"))
        else:
            log.info("%-14s budget %-6s acc %.4f cost %.4f ms %s", r["method"], r.get("budget_value", "-"), r["test_accuracy"],
                     r["test_cost_ms"], r.get("note", ""))  # fmt: skip


def read_seed_runs(
    runs: Sequence[str],
    summaries: Sequence[str],
    tests: Sequence[str],
    schedulers: Sequence[str],
    evals: Sequence[str],
    log: logging.Logger,
) -> tuple[list[tuple[str, dict[tuple[str, float], torch.Tensor], list[dict[str, Any]]]], list[dict[str, str]], int]:
    """The runs of a seed study (``results/<bench>/seed<s>/``), read for :func:`eenet.analysis.stats.seed_stats`: per run
    its seed, each fitted policy's per-sample correctness on the test cache and its evaluations; with every run's
    summary.csv rows and the number of test samples. ``schedulers`` and ``evals``: the files of every run."""

    def of_run(paths: Sequence[str], run: str) -> list[str]:
        return [f for f in paths if f.startswith(f"results/{run}/")]

    seeds, summary, n_test = [], [], 0
    for run, summary_csv, test in zip(runs, summaries, tests, strict=True):
        rows = read_csv(summary_csv)
        tensors, _ = read_logits_cache(test, split="test")
        correct = correct_by_policy(
            tensors["probs"], tensors["labels"], [read_fitted_policy(f) for f in of_run(schedulers, run)], tensors.get("logits")
        )
        seeds.append((rows[0]["seed"], correct, [read_json(f) for f in of_run(evals, run)]))
        summary += rows
        n_test = tensors["labels"].numel()
        log.info("%s: seed %s, %d summary rows, %d fitted policies", run, rows[0]["seed"], len(rows), len(correct))
    return seeds, summary, n_test


def seeds_caption(bench: str, seeds: Sequence[tuple[Any, ...]], device: Any, n_test: int) -> str:
    """The caption of a seed study's curve.pdf."""
    return (
        f"Mean over {len(seeds)} training seeds ({', '.join(str(s[0]) for s in seeds)}); shaded: the lowest to the highest "
        f"seed. Costs measured per seed on {device}; policies fitted on validation, evaluated on "
        f"{n_test} test samples. Every seed's curve: results/{bench}/seed<s>/curve.pdf."
    )
