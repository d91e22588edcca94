"""The plain-network frontier: what a user could run instead of early exit, compared at equal *measured* latency.

The frontier of a benchmark always holds the multi-exit network cut after each exit with only that exit's head (same
weights, no other head, no decision: :func:`eenet.measure.costs.run_cut`), ``cut<k>``, the last cut being the plain
network; each has exit ``k``'s test accuracy. With ``frontier.trained`` it also holds plain networks trained alone with
the benchmark's recipe (:func:`eenet.pipeline.planning.frontier_networks`): ``depth<k>``, the first ``k`` stages with
one head (the architecture of ``cut<k-1>``), and ``width<m>``, the whole network at ``m`` times the width, each with
its own test accuracy. Cuts alone are timed in the same interleaved run as the exits (cost.csv's ``cut_ms``; for a
cost.csv without it, the plain network alone: :func:`frontier_points`); with networks trained alone, every network,
cuts included, is timed in one interleaved run of its own (frontier.csv: :func:`network_points`).

A policy is placed at its measured latency at batch 1 on the whole test set, on cost.csv's clock (runtime.csv: the
timed sample's ``measured_vs_same_run``, its measured time over the cost model's prediction from single exits timed in
the same run, times ``test_simulated_ms``, the cost model's prediction for every test sample: :func:`measured_latency`),
and frontier.csv's times are put on the same clock through the cuts both jobs time (:func:`clock_ratio`); its
competitor is the most accurate frontier point, cut or trained, at no more than that latency, and the advantage over it
gets the paired bootstrap interval of every other comparison (:func:`frontier_columns`).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from eenet.analysis.bootstrap import bootstrap_comparisons, holm, row_policies

__all__ = [
    "FRONTIER_FIELDS", "CLOCK_FIELDS", "frontier_points", "network_points", "read_frontier", "measured_latency", "frontier_columns",
    "competitor", "seed_frontier_columns", "seed_latencies", "batched_size", "clock_columns", "clock_ratio", "cut_times",
]  # fmt: skip

FRONTIER_FIELDS = [
    "measured_ms", "frontier_network", "frontier_ms", "frontier_accuracy", "vs_frontier", "vs_frontier_ci_low",
    "vs_frontier_ci_high", "vs_frontier_seed_ci_low", "vs_frontier_seed_ci_high", "vs_frontier_p_holm",
]  # fmt: skip
"""Columns of stats.csv from the frontier: the policy's ``measured_ms`` (batch 1, whole test set, see the module);
the competitor, ``frontier_network`` (``cut<k>``: the multi-exit network cut after exit ``k``, ``cut<K-1>`` the plain
network; ``depth<k>``, ``width<m>``: a network trained alone, see the module), its measured ms and test accuracy;
``vs_frontier``: the policy's test accuracy minus the competitor's, with its 95 % paired bootstrap interval (test
samples resampled) and ``vs_frontier_p_holm``, its p-value Holm-adjusted over the file's frontier comparisons (a run's
rows; the ``mean`` rows apart). On the ``mean`` rows of a seed study (:func:`seed_frontier_columns`): each seed's
competitor at that seed's measured latency (``frontier_network`` names them in seed order, ``depth2/depth3/...``; ``measured_ms``,
``frontier_ms``, ``frontier_accuracy`` their means), the mean advantage, its test-only interval, and
``vs_frontier_seed_ci_low/high``, the two-level interval (seeds and test samples resampled), whose p-value the Holm
adjustment then takes. Empty where the policy was not run (the oracle, an infeasible fit) or where no frontier point is
as fast as it (in any seed, for a ``mean`` row). (stats.csv files written before the networks trained alone have
``frontier_exit``, the cut's exit, instead.)"""


CLOCK_FIELDS = [
    "vs_maxpred_measured", "vs_maxpred_measured_ci_low", "vs_maxpred_measured_ci_high", "batch_size_batched",
    "measured_ms_batched", "vs_maxpred_measured_batched", "vs_maxpred_measured_batched_ci_low",
    "vs_maxpred_measured_batched_ci_high",
]  # fmt: skip
"""Columns of stats.csv from the comparison with MaxPred on the measured clock (:func:`clock_columns`): the policy's test
accuracy minus MaxPred's at the policy's measured latency (MaxPred's accuracy interpolated between its two budgets whose
measured latencies bracket it), with its 95 % paired bootstrap interval, at batch 1 and at runtime.csv's larger batch
size (``batch_size_batched``; ``measured_ms_batched``: the policy's ms per sample there, whole test set). Beside
``vs_maxpred``, the comparison at the same budget (equal *simulated* cost). Empty where the policy's latency is outside
MaxPred's measured range (no extrapolation) or it was not run."""


def frontier_points(cost_rows: Sequence[Mapping[str, str]], probs: torch.Tensor, labels: torch.Tensor) -> list[dict[str, Any]]:
    """The cuts of cost.csv, one point per exit: ``network`` (``cut<k>``), ``kind`` (``cut``), ``exit``, ``ms``
    (cost.csv's ``cut_ms``; the last exit's is the plain network's ``plain_ms``) and ``correct`` (``bool [N]``: exit
    ``k``'s argmax on the test set is right), ``accuracy``. ``probs [K, N, C]``, ``labels [N]``. Exits without a
    timing (a cost.csv written before ``cut_ms``) are left out."""
    return [_point(f"cut{k}", "cut", ms, probs[k], labels, exit=k) for k, ms in cut_times(cost_rows).items()]


def cut_times(cost_rows: Sequence[Mapping[str, str]]) -> dict[int, float]:
    """Exit ``k`` -> cost.csv's ms of the network cut after it (``cut_ms``; the last exit's: the plain network's
    ``plain_ms``), in exit order; exits without a timing (a cost.csv written before ``cut_ms``) left out."""
    rows = sorted(cost_rows, key=lambda r: int(r["exit"]))
    times = {}
    for k, r in enumerate(rows):
        ms = r.get("plain_ms") if k == len(rows) - 1 else r.get("cut_ms")
        if ms not in (None, ""):
            times[k] = float(ms)
    return times


def _point(network: str, kind: str, ms: float, probs: torch.Tensor, labels: torch.Tensor, **extra: Any) -> dict[str, Any]:
    correct = probs.argmax(dim=1) == labels
    return {"network": network, "kind": kind, **extra, "ms": ms, "correct": correct, "accuracy": float(correct.double().mean())}


def network_points(
    frontier_rows: Sequence[Mapping[str, str]], probs: torch.Tensor, labels: torch.Tensor, trained: Mapping[str, torch.Tensor]
) -> list[dict[str, Any]]:
    """Every network of frontier.csv (:func:`eenet.measure.costs.measure_frontier`: cuts and networks trained alone,
    timed in one run), as :func:`frontier_points` makes them: a cut ``cut<k>`` has exit ``k``'s accuracy (``probs
    [K, N, C]``), a network trained alone its own (``trained[name]``: its test softmax ``[1, N, C]`` or ``[N, C]``).
    ``labels [N]``. Points in the file's order; ``KeyError`` for a trained network without its outputs."""
    points = []
    for r in frontier_rows:
        name, kind = r["network"], r["kind"]
        if kind == "cut":
            points.append(_point(name, kind, float(r["ms"]), probs[int(r["exit"])], labels, exit=int(r["exit"])))
            continue
        if name not in trained:
            raise KeyError(f"frontier.csv times {name}, whose test outputs are not given (have: {', '.join(trained) or 'none'})")
        out = trained[name]
        points.append(_point(name, kind, float(r["ms"]), out[-1] if out.dim() == 3 else out, labels))
    return points


def read_frontier(
    cost_rows: Sequence[Mapping[str, str]], files: Sequence[str | os.PathLike[str]], probs: torch.Tensor, labels: torch.Tensor
) -> list[dict[str, Any]]:
    """A run's frontier points from its files: with networks trained alone, ``files`` is frontier.csv then each
    network's test cache (``.../frontier/<name>/logits/test.safetensors``, :func:`eenet.pipeline.planning.frontier_files`)
    -> :func:`network_points`; without (``files`` empty), cost.csv's cuts (``cost_rows``) -> :func:`frontier_points`.
    ``probs [K, N, C]``, ``labels [N]``: the multi-exit network's test cache. ``ValueError`` when a network's test
    labels are not these (another test set)."""
    from eenet.io import read_csv
    from eenet.records import read_logits_cache

    if not files:
        return frontier_points(cost_rows, probs, labels)
    table, *caches = files
    rows = read_csv(table)
    drift = clock_ratio(cost_rows, rows)
    trained = {}
    for f in caches:
        tensors, _ = read_logits_cache(f, split="test")
        if not torch.equal(tensors["labels"], labels):
            raise ValueError(f"{f}: its test labels are not the multi-exit network's (another test set or split)")
        trained[Path(f).parents[1].name] = tensors["probs"]
    return [{**pt, "ms": pt["ms"] * drift} for pt in network_points(rows, probs, labels, trained)]


def clock_ratio(cost_rows: Sequence[Mapping[str, str]], frontier_rows: Sequence[Mapping[str, str]]) -> float:
    """The factor that puts frontier.csv's times on cost.csv's clock: the median over the exits of cost.csv's ``cut_ms``
    (the plain network's ``plain_ms`` at the last exit) over frontier.csv's time of the same cut (both jobs time the
    cuts; 1.0 where they share none). The two jobs run at other times on a machine whose speed drifts."""
    cost = {f"cut{k}": ms for k, ms in cut_times(cost_rows).items()}
    shared = [r for r in frontier_rows if r.get("kind") == "cut" and r["network"] in cost and float(r["ms"]) > 0]
    ratios = [cost[r["network"]] / float(r["ms"]) for r in shared]
    return statistics.median(ratios) if ratios else 1.0


def measured_latency(runtime_rows: Sequence[Mapping[str, str]], method: str, budget_value: Any, batch_size: int = 1) -> float | None:
    """A policy's measured ms per sample at ``batch_size``, scaled to the whole test set (``None``: not in runtime.csv).

    At batch 1, on **cost.csv's clock**: ``measured_vs_same_run x test_simulated_ms``, the policy's measured time over
    what the cost model predicts from the single exits timed in the same run (the runtime's same-run check), times the
    cost model's prediction for the whole test set on cost.csv's costs. The runtime job and cost.csv's run at other
    times, and a shared machine can be twice as slow in one of them (measured: every single exit 2.1-2.2x faster in the
    runtime than in cost.csv's job an hour before, on a loaded 2-core machine): the raw measured ms against cost.csv's
    cuts compared a policy with networks timed on another clock. Without the check (older files, batched rows):
    ``measured_ms / simulated_ms x test_simulated_ms``; without ``test_simulated_ms``, the timed sample's ms."""
    for r in runtime_rows:
        if r["method"] == method and str(r["budget_value"]) == str(budget_value) and int(r["batch_size"]) == batch_size:
            if r.get("test_simulated_ms") in (None, ""):
                return float(r["measured_ms"])  # a runtime.csv of an older run: the timed sample's own latency
            if r.get("measured_vs_same_run") not in (None, ""):
                return float(r["measured_vs_same_run"]) * float(r["test_simulated_ms"])
            return float(r["measured_ms"]) / float(r["simulated_ms"]) * float(r["test_simulated_ms"])
    return None


def competitor(points: Sequence[Mapping[str, Any]], ms: float) -> Mapping[str, Any] | None:
    """The frontier point a policy of measured latency ``ms`` is compared with: the most accurate at no more than
    ``ms`` (the faster on a tie); ``None`` when none is as fast."""
    fast = [p for p in points if p["ms"] <= ms]
    return max(fast, key=lambda p: (p["accuracy"], -p["ms"])) if fast else None


def _holm_frontier(rows: Sequence[dict[str, Any]], pvalues: Sequence[float]) -> None:
    for row, q in zip(rows, holm(list(pvalues)), strict=True):
        row["vs_frontier_p_holm"] = q


def frontier_columns(
    rows: Sequence[dict[str, Any]],
    correct: Mapping[tuple[str, Any], torch.Tensor],
    runtime_rows: Sequence[Mapping[str, str]],
    points: Sequence[Mapping[str, Any]],
    reps: int = 2000,
    seed: int = 0,
) -> None:
    """Fill :data:`FRONTIER_FIELDS` in the per-budget ``rows`` of stats.csv (in place), one paired bootstrap for all
    (the same draws) and one Holm family: ``correct[(method, budget_value)]`` ``bool [N]`` per policy, ``runtime_rows``
    runtime.csv, ``points`` :func:`frontier_points` or :func:`network_points` (cuts and networks trained alone: the
    competitor is the most accurate of all at no more than the policy's latency, :func:`competitor`)."""
    todo = []
    for row in rows:
        key = (row["method"], row["budget_value"])
        if row["budget_value"] == "all" or key not in correct or not points:
            continue
        ms = measured_latency(runtime_rows, *key)
        if ms is None:
            continue
        row["measured_ms"] = ms
        best = competitor(points, ms)
        if best is None:
            continue
        row.update({"frontier_network": best["network"], "frontier_ms": best["ms"], "frontier_accuracy": best["accuracy"]})
        todo.append((row, correct[key].reshape(-1), best["correct"]))
    if not todo:
        return
    d = torch.stack([a.to(torch.int8) - b.to(torch.int8) for _, a, b in todo])
    r = bootstrap_comparisons(d, reps, seed=seed)
    for i, (row, _, _) in enumerate(todo):
        row.update({"vs_frontier": float(r["diff"][i]), "vs_frontier_ci_low": float(r["ci_low"][i]),
                    "vs_frontier_ci_high": float(r["ci_high"][i])})  # fmt: skip
    _holm_frontier([row for row, _, _ in todo], r["p"].tolist())


def seed_frontier_columns(
    mean_rows: Sequence[dict[str, Any]],
    runs: Sequence[tuple[Mapping[tuple[str, Any], torch.Tensor], Sequence[Mapping[str, str]], Sequence[Mapping[str, Any]]]],
    reps: int = 2000,
    seed: int = 0,
    latencies: Sequence[Mapping[tuple[str, str], float]] | None = None,
) -> None:
    """Fill :data:`FRONTIER_FIELDS` in the per-budget ``mean`` rows of a seed study (in place): ``runs``, per training
    seed (in the order of its runs), ``(correct, runtime_rows, points)`` as :func:`frontier_columns` takes them. Each
    seed's policy is compared with that seed's competitor at that seed's measured latency; the advantages ``[S, N]``
    of every row are bootstrapped together (:func:`eenet.analysis.bootstrap.bootstrap_comparisons`: test samples, and
    seeds with test samples), the two-level p-values Holm-adjusted as one family. A row is left empty unless every seed
    ran the policy and has a competitor for it.

    ``latencies``: per run, ``(method, budget_value) -> measured ms`` as that run's own stats.csv gives it
    (:func:`seed_latencies`): a policy that is an alias there (the same decisions as another) has the latency of the row
    it is an alias of, which the study's per-seed rows show (:func:`eenet.analysis.stats.carry_seed_columns`), so that
    the mean row is the mean of its seeds' rows. Without it (or for a policy it lacks): :func:`measured_latency`."""
    todo = []
    for row in mean_rows:
        key = (row["method"], row["budget_value"])
        if row["budget_value"] == "all":
            continue
        picks = []
        for i, (correct, runtime_rows, points) in enumerate(runs):
            known = latencies[i].get((key[0], str(key[1]))) if latencies is not None else None
            ms = (known if known is not None else measured_latency(runtime_rows, *key)) if key in correct and points else None
            best = competitor(points, ms) if ms is not None else None
            if best is None:
                break
            picks.append((ms, best, correct[key].reshape(-1)))
        if len(picks) != len(runs) or not picks:
            continue
        row.update({
            "measured_ms": statistics.fmean(ms for ms, _, _ in picks),
            "frontier_network": "/".join(b["network"] for _, b, _ in picks),
            "frontier_ms": statistics.fmean(b["ms"] for _, b, _ in picks),
            "frontier_accuracy": statistics.fmean(b["accuracy"] for _, b, _ in picks),
        })  # fmt: skip
        todo.append((row, torch.stack([a.to(torch.int8) - b["correct"].to(torch.int8) for _, b, a in picks])))
    if not todo:
        return
    r = bootstrap_comparisons(torch.stack([d for _, d in todo]), reps, seed=seed)
    for i, (row, _) in enumerate(todo):
        row.update({
            "vs_frontier": float(r["diff"][i]), "vs_frontier_ci_low": float(r["ci_low"][i]), "vs_frontier_ci_high": float(r["ci_high"][i]),
            "vs_frontier_seed_ci_low": float(r["seed_ci_low"][i]), "vs_frontier_seed_ci_high": float(r["seed_ci_high"][i]),
        })  # fmt: skip
    _holm_frontier([row for row, _ in todo], r["seed_p"].tolist())


def seed_latencies(seed_rows: Sequence[Mapping[str, str]]) -> dict[tuple[str, str], float]:
    """``(method, budget_value) -> measured_ms`` of one run's stats.csv rows, each alias of a row (``aliases``) given
    that row's: the latencies :func:`seed_frontier_columns` takes."""
    out = {}
    for r in seed_rows:
        if r.get("measured_ms") in (None, ""):
            continue
        for m in row_policies(r):
            out[(m, str(r["budget_value"]))] = float(r["measured_ms"])
    return out


def batched_size(runtime_rows: Sequence[Mapping[str, str]]) -> int | None:
    """The larger batch size runtime.csv times the policies at (``None``: batch 1 only)."""
    sizes = {int(r["batch_size"]) for r in runtime_rows if r.get("batch_size") not in (None, "")} - {1}
    return max(sizes) if sizes else None


def _interpolated(ms: float, ref: Sequence[tuple[float, torch.Tensor]]) -> torch.Tensor | None:
    """The reference's outcomes ``float64 [N]`` at latency ``ms``, linear between its two points (``(ms, correct [N])``,
    sorted by ms) that bracket it; ``None`` outside their range."""
    if not ref or ms < ref[0][0] or ms > ref[-1][0]:
        return None
    for (lo, c_lo), (hi, c_hi) in zip(ref, ref[1:], strict=False):
        if lo <= ms <= hi:
            w = 0.0 if hi == lo else (ms - lo) / (hi - lo)
            return (1 - w) * c_lo.double() + w * c_hi.double()
    return ref[0][1].double()  # a single point, at exactly its latency


def clock_columns(
    rows: Sequence[dict[str, Any]],
    correct: Mapping[tuple[str, Any], torch.Tensor],
    runtime_rows: Sequence[Mapping[str, str]],
    reference: str = "maxpred",
    reps: int = 2000,
    seed: int = 0,
) -> None:
    """Fill :data:`CLOCK_FIELDS` in the per-budget ``rows`` of stats.csv (in place): each policy against ``reference``
    on the measured clock, at batch 1 and at runtime.csv's larger batch size. ``correct[(method, budget_value)]``
    ``bool [N]`` per policy (the reference's budgets among them), ``runtime_rows`` runtime.csv. The reference's
    accuracy at the policy's latency is interpolated between its budgets (each placed at its own measured latency);
    the difference per test sample (policy's outcome minus the interpolated one, ``[N]``) gets one paired bootstrap
    per batch size for all policies (the same draws)."""
    batched = batched_size(runtime_rows)
    for suffix, b in (("", 1), ("_batched", batched)):
        if b is None:
            continue
        ref = []
        for (method, value), c in correct.items():
            ms = measured_latency(runtime_rows, method, value, b) if method == reference else None
            if ms is not None:
                ref.append((ms, c.reshape(-1)))
        ref.sort(key=lambda t: t[0])
        todo = []
        for row in rows:
            key = (row["method"], row["budget_value"])
            if row["budget_value"] == "all" or key not in correct:
                continue
            ms = measured_latency(runtime_rows, *key, b)
            if ms is None:
                continue
            if b > 1:
                row.update({"batch_size_batched": b, "measured_ms_batched": ms})
            at = _interpolated(ms, ref)
            if at is not None:
                todo.append((row, correct[key].reshape(-1).double() - at))
        if not todo:
            continue
        r = bootstrap_comparisons(torch.stack([d for _, d in todo]), reps, seed=seed)
        for i, (row, _) in enumerate(todo):
            row.update({f"vs_maxpred_measured{suffix}": float(r["diff"][i]), f"vs_maxpred_measured{suffix}_ci_low": float(r["ci_low"][i]),
                        f"vs_maxpred_measured{suffix}_ci_high": float(r["ci_high"][i])})  # fmt: skip
