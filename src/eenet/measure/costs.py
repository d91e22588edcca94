"""Costs of reaching each exit: measured wall-clock latency and counted FLOPs, and budget resolution.

The cost of exit ``k`` is cumulative: the backbone up to stage ``k``, the heads of exits ``0..k`` and the
decisions taken at exits ``0..k-1`` (early-exit inference evaluates every earlier head, and decides there
whether to stop, before it reaches exit ``k``): what :mod:`eenet.measure.runtime` pays for a sample leaving at ``k``.

The baseline every speed-up is quoted against is the *plain network*: every stage and the last head only
(:meth:`MultiExitNetwork.forward_plain`), what a user would run without early exit. It is timed in the same
interleaved run as the exits and written beside them in cost.csv (``plain_ms``, ``plain_flops``). A budget given
as a fraction (``unit: fraction``) is a fraction of the last exit's cumulative cost (cost.csv's last ``ms``), which
includes every intermediate head and decision: the plain network costs less than that (its ratio is in the log).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import torch

from eenet.inputs import Inputs, first_tensor

if TYPE_CHECKING:  # types only: fitting and evaluating read costs without the model or data code
    from eenet.data.spec import Split
    from eenet.models import MultiExitNetwork

__all__ = [
    "measure_costs",
    "log_costs",
    "NoisyMeasurementError",
    "sync_device",
    "time_summary",
    "run_to_exit",
    "run_plain",
    "time_per_sample",
    "measure_latency",
    "profile_costs",
    "check_spread",
    "count_flops",
    "count_plain_flops",
    "cost_table",
    "resolve_budget",
    "read_costs",
    "read_plain_cost",
    "PLAIN_FIELDS",
    "CUT_FIELDS",
    "run_cut",
    "profile_batches",
    "profile_info",
]

PLAIN_FIELDS = ["plain_ms", "plain_q1", "plain_q3", "plain_flops"]
"""Columns of cost.csv with the plain network's cost (the same on every row; absent from files written before them)."""
CUT_FIELDS = ["cut_ms", "cut_q1", "cut_q3"]
"""Columns of cost.csv with the cost of the network cut after the row's exit, that exit's head only (:func:`run_cut`);
empty on the last row (that cut is the plain network) and absent from files written before them."""


class NoisyMeasurementError(RuntimeError):
    """A latency measurement whose spread is too large to be trusted."""


def sync_device(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); nothing on the CPU. Every timer reads the clock after it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_summary(times_ms: list[float]) -> dict[str, float]:
    """``ms`` (median), ``ms_q1``, ``ms_q3`` (quartiles) of repeated timings."""
    q = statistics.quantiles(times_ms, n=4) if len(times_ms) > 1 else [times_ms[0]] * 3
    return {"ms": statistics.median(times_ms), "ms_q1": q[0], "ms_q3": q[2]}


@torch.inference_mode()
def run_to_exit(model: MultiExitNetwork, x: Inputs, exit_index: int) -> torch.Tensor:
    """What early-exit inference does for a batch that leaves at ``exit_index``: stages and heads ``0..exit_index``,
    and at every exit the softmax and the confidence a threshold policy reads (read back to the host, as
    :mod:`eenet.measure.runtime` does to decide), then the prediction. Returns the predictions ``int64 [B]``."""
    state = model.begin(x)
    for k in range(exit_index + 1):
        state, logits = model.step(k, state)
        probs = torch.softmax(logits.float(), dim=1)
        if k < exit_index:
            float(probs.max())
    return probs.argmax(dim=1)


@torch.inference_mode()
def run_cut(model: MultiExitNetwork, x: Inputs, exit_index: int) -> torch.Tensor:
    """The network cut after exit ``exit_index``, run as a plain network of its own: stages ``0..exit_index`` and that
    exit's head only (no other head, no decision): predictions ``int64 [B]``. The last exit's cut is the plain network."""
    state = model.begin(x)
    for k in range(exit_index + 1):
        state = model.advance(k, state)
    return model.head(exit_index, state).argmax(dim=1)


@torch.inference_mode()
def run_plain(model: MultiExitNetwork, x: Inputs) -> torch.Tensor:
    """The plain network on a batch (every stage, the last head only): predictions ``int64 [B]``."""
    return model.forward_plain(x).argmax(dim=1)


@torch.inference_mode()
def time_per_sample(
    runs: Mapping[str, Callable[[Any], object]],
    batches: Sequence[Inputs],
    device: torch.device,
    warmup: int = 1,
    repeats: int = 5,
    chunk: int = 10,
    progress: Callable[[int, int], None] | None = None,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, dict[str, float]]:
    """Mean wall-clock ms per sample of each ``runs[name](batch)`` over ``batches``, robust to bursts of load.

    After ``warmup`` untimed passes of every run over every batch, the batches are taken ``chunk`` at a time;
    every run times the chunk ``repeats`` times, the runs interleaved (so that drift on a shared machine hits
    them alike). A chunk's time is the median of its repeats, and ``ms`` is the sum over chunks per sample: the
    mean latency over the samples, with a burst of another process's load, which spoils one repeat of a chunk,
    left out. ``ms_q1``, ``ms_q3``: quartiles of the per-repeat totals (the spread between whole passes).
    CUDA is synchronised around every timed call. ``progress(done, total)``, if given, is called after each
    chunk with the chunks done and their number. ``clock``: the timer read before and after every timed call, in
    seconds (:func:`time.perf_counter`; a test passes a clock of its own).
    """
    n = sum(first_tensor(b).shape[0] for b in batches)
    n_chunks = -(-len(batches) // chunk)
    for run in runs.values():
        for _ in range(warmup):
            for b in batches:
                run(b)
    medians: dict[str, float] = dict.fromkeys(runs, 0.0)
    totals: dict[str, list[float]] = {name: [0.0] * repeats for name in runs}
    for i in range(0, len(batches), chunk):
        part = batches[i : i + chunk]
        times: dict[str, list[float]] = {name: [] for name in runs}
        for r in range(repeats):
            for name, run in runs.items():
                sync_device(device)
                t0 = clock()
                for b in part:
                    run(b)
                sync_device(device)
                dt = (clock() - t0) * 1000.0
                times[name].append(dt)
                totals[name][r] += dt
        for name, ts in times.items():
            medians[name] += statistics.median(ts)
        if progress is not None:
            progress(i // chunk + 1, n_chunks)
    out = {}
    for name in runs:
        spread = time_summary([t / n for t in totals[name]])
        out[name] = {"ms": medians[name] / n, "ms_q1": spread["ms_q1"], "ms_q3": spread["ms_q3"]}
    return out


def measure_latency(
    model: MultiExitNetwork, batches: Inputs | Sequence[Inputs], warmup: int = 1, repeats: int = 5
) -> list[dict[str, float]]:
    """Mean wall-clock time per sample to reach each exit and decide there (:func:`run_to_exit`), in ms.

    ``batches``: one batch ``[B, ...]`` (or a dict of such tensors), or a list of them (distinct samples, timed
    as a stream of new inputs, as inference sees them), already on the model's device. Timed by
    :func:`time_per_sample`, the same way :mod:`eenet.measure.runtime` is timed, with the exits as the interleaved runs.
    Returns one dict per exit: ``ms`` (mean per sample, bursts of load left out), ``ms_q1``, ``ms_q3``.
    """
    return profile_costs(model, batches, warmup, repeats, plain=False)[0]


def profile_costs(
    model: MultiExitNetwork, batches: Inputs | Sequence[Inputs], warmup: int = 1, repeats: int = 5, plain: bool = True
) -> tuple[list[dict[str, float]], dict[str, float] | None]:
    """:func:`measure_latency` of every exit and, in the same interleaved run, the plain network (:func:`run_plain`)
    and the network cut after each earlier exit (:func:`run_cut`: the plain-network frontier).

    Returns ``(per exit, plain)``: the rows of :func:`measure_latency` (with ``plain``, each exit but the last also
    has ``cut_ms``, ``cut_q1``, ``cut_q3``), and the plain network's ``ms``, ``ms_q1``, ``ms_q3`` (``None`` when
    ``plain`` is false).
    """
    model.eval()
    if not isinstance(batches, (list, tuple)):
        batches = [batches]
    last = model.num_exits - 1
    runs: dict[str, Callable[[Any], object]] = {str(k): partial(run_to_exit, model, exit_index=k) for k in range(model.num_exits)}
    if plain:
        runs["plain"] = partial(run_plain, model)
        runs.update({f"cut{k}": partial(run_cut, model, exit_index=k) for k in range(last)})
    timing = time_per_sample(runs, batches, first_tensor(batches[0]).device, warmup, repeats)
    rows = [dict(timing[str(k)]) for k in range(model.num_exits)]
    for k in range(last if plain else 0):
        c = timing[f"cut{k}"]
        rows[k].update({"cut_ms": c["ms"], "cut_q1": c["ms_q1"], "cut_q3": c["ms_q3"]})
    return rows, timing.get("plain")


def check_spread(latency: list[dict[str, float]], limit: float, names: Sequence[str] | None = None) -> list[float]:
    """Relative spread ``(q3 - q1) / median`` of every exit's latency (rows of :func:`measure_latency`; ``names``: what
    each row times, ``exit <k>`` by default).

    Raises:
        NoisyMeasurementError: an exit's spread is above ``limit``; the message names the exits.
    """
    spreads = [(lat["ms_q3"] - lat["ms_q1"]) / lat["ms"] if lat["ms"] > 0 else float("inf") for lat in latency]
    names = list(names) if names is not None else [f"exit {k}" for k in range(len(latency))]
    noisy = [f"{names[k]}: {s:.2f}" for k, s in enumerate(spreads) if s > limit]
    if noisy:
        raise NoisyMeasurementError(
            f"latency too noisy to trust: interquartile range / median is {', '.join(noisy)}, above profile.max_spread = {limit}"
        )
    return spreads


@torch.inference_mode()
def count_flops(model: MultiExitNetwork, sample: Inputs) -> list[int]:
    """FLOPs per sample to reach each exit (``torch.utils.flop_counter``; a multiply-add counts 2)."""
    # imported here: it pulls in torch.export and triton (~0.4 s), which every fit and evaluation job would pay
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    flops = []
    for k in range(model.num_exits):
        counter = FlopCounterMode(display=False)
        with counter:
            model.forward_until(sample, k)
        flops.append(int(counter.get_total_flops() // first_tensor(sample).shape[0]))
    return flops


@torch.inference_mode()
def count_plain_flops(model: MultiExitNetwork, sample: Inputs) -> int:
    """FLOPs per sample of the plain network (:meth:`MultiExitNetwork.forward_plain`: stages and the last head)."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        model.forward_plain(sample)
    return int(counter.get_total_flops() // first_tensor(sample).shape[0])


def cost_table(
    latency: list[dict[str, float]],
    flops: list[int],
    meta: dict[str, Any],
    plain: dict[str, float] | None = None,
    plain_flops: int | None = None,
) -> list[dict[str, Any]]:
    """Rows of cost.csv: one per exit, with the cost made monotone (``ms`` = running max of ``ms_raw``).

    A deeper exit runs a superset of the work of a shallower one, so a measured time below the
    previous exit's is timing noise; ``ms_raw`` keeps what was measured. ``plain`` (a timing of
    :func:`profile_costs`) and ``plain_flops`` add the plain network's cost to every row (:data:`PLAIN_FIELDS`).
    """
    extra = {}
    if plain is not None:
        extra = {"plain_ms": plain["ms"], "plain_q1": plain["ms_q1"], "plain_q3": plain["ms_q3"], "plain_flops": plain_flops}
    rows, running = [], 0.0
    for k, (lat, fl) in enumerate(zip(latency, flops, strict=True)):
        running = max(running, lat["ms"])
        cut = {key: lat.get(key, "") for key in CUT_FIELDS} if plain is not None else {}
        timing = {"ms": running, "ms_raw": lat["ms"], "ms_q1": lat["ms_q1"], "ms_q3": lat["ms_q3"], "flops": fl}
        rows.append({"exit": k, **timing, **cut, **extra, **meta})
    return rows


def measure_costs(
    model: MultiExitNetwork, test: Split, prof: Mapping[str, Any], device: torch.device, meta: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[float]]:
    """cost.csv's rows for ``model`` on a stream of distinct ``test`` samples (``prof``: the benchmark's ``profile:``
    block -- ``batch_size``, ``samples``, ``warmup``, ``repeats``, ``max_spread``, ``threads``): the cumulative time
    and FLOPs to each exit and of the plain network, timed in one run; ``meta`` (device, versions) joins every row.
    Returns the rows and each timing's spread (IQR / median: the exits', then the plain network's).

    Raises:
        NoisyMeasurementError: a timing spreads more than ``prof["max_spread"]``.
    """
    batches = profile_batches(test, prof, device)
    latency, plain = profile_costs(model, batches, prof["warmup"], prof["repeats"])
    spreads = check_spread([*latency, plain], prof["max_spread"])
    one = test.inputs(torch.arange(1), device)
    return cost_table(latency, count_flops(model, one), profile_info(batches, prof, meta), plain, count_plain_flops(model, one)), spreads


def profile_batches(test: Split, prof: Mapping[str, Any], device: torch.device) -> list[Inputs]:
    """The batches every cost measurement times: ``prof["samples"]`` distinct ``test`` samples at most (new inputs, as
    inference sees them), ``prof["batch_size"]`` at a time, on ``device``."""
    n = min(prof["batch_size"], len(test))
    starts = range(0, min(len(test) - n + 1, prof["samples"]), n)
    return [test.inputs(torch.arange(i, i + n), device) for i in starts]


def profile_info(batches: Sequence[Inputs], prof: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    """What a cost measurement on ``batches`` (:func:`profile_batches`) writes beside each time: batch size, samples,
    repeats, threads, then ``meta``."""
    n = first_tensor(batches[0]).shape[0]
    return {"batch_size": n, "samples": len(batches) * n, "repeats": prof["repeats"], "threads": prof["threads"], **meta}


def log_costs(log: logging.Logger, rows: list[dict[str, Any]], spreads: list[float]) -> None:
    """A line per exit of cost.csv, one for the plain network, one for the device and the spreads."""
    for r in rows:
        cut = f"; cut after it, its head only: {r['cut_ms']:.4f} ms" if r.get("cut_ms") not in (None, "") else ""
        log.info("exit %d: %.4f ms/sample (measured %.4f, IQR of passes %.4f-%.4f), %.3g FLOPs%s", r["exit"], r["ms"], r["ms_raw"],
                 r["ms_q1"], r["ms_q3"], r["flops"], cut)  # fmt: skip
    last = rows[-1]
    log.info("plain network (stages + last head): %.4f ms/sample (IQR %.4f-%.4f), %.3g FLOPs; %.3f of the last exit's cost "
             "(a budget fraction is a fraction of the last exit's cost)", last["plain_ms"], last["plain_q1"], last["plain_q3"],
             last["plain_flops"], last["plain_ms"] / last["ms"])  # fmt: skip
    log.info("device %s, batch %d, torch %s; spread (IQR / median) per exit %s, plain %.3f", last.get("device"), last["batch_size"],
             last.get("torch_version"), " ".join(f"{s:.3f}" for s in spreads[:-1]), spreads[-1])  # fmt: skip


def read_costs(rows: list[dict[str, str]]) -> tuple[list[float], list[int], dict[str, str]]:
    """``(ms [K], flops [K], meta)`` from the rows of a cost.csv (as read by :func:`eenet.io.read_csv`)."""
    rows = sorted(rows, key=lambda r: int(r["exit"]))
    meta = {k: v for k, v in rows[0].items() if k not in {"exit", "ms", "ms_raw", "ms_q1", "ms_q3", "flops", *PLAIN_FIELDS, *CUT_FIELDS}}
    return [float(r["ms"]) for r in rows], [int(r["flops"]) for r in rows], meta


def read_plain_cost(rows: list[dict[str, str]]) -> dict[str, float] | None:
    """The plain network's ``ms``, ``ms_q1``, ``ms_q3``, ``flops`` from the rows of a cost.csv; ``None`` for a
    cost.csv written before the plain network was profiled (re-run profile_latency to get it)."""
    if not rows or rows[0].get("plain_ms") in (None, ""):
        return None
    r = rows[0]
    return {"ms": float(r["plain_ms"]), "ms_q1": float(r["plain_q1"]), "ms_q3": float(r["plain_q3"]), "flops": float(r["plain_flops"])}


def resolve_budget(value: float, unit: str, costs_ms: list[float]) -> float:
    """A budget in ms per sample: ``unit`` is ``ms`` or ``fraction`` of ``costs_ms[-1]``, the last exit's cumulative
    cost (every stage, every head and the decisions at exits ``0..K-2``; not the plain network's cost)."""
    if unit == "ms":
        return float(value)
    if unit == "fraction":
        return float(value) * costs_ms[-1]
    raise ValueError(f"unknown budget unit {unit!r}; use 'ms' or 'fraction'")
