"""Inference that really exits: run a batch through a multi-exit network and let samples leave at their exit.

After each exit the scheduler decides, from the probabilities of the exits computed so far, which of the
samples still running leave there; those are removed from the batch (their predictions and exit indices
recorded) and only the rest go through the next stage. No compute is spent on a sample after it left.
The decisions are those of :meth:`eenet.schedulers.ExitScheduler.assign` on the same probabilities: a
threshold policy's decision at exit ``k`` reads exits ``0..k`` only.

    model, _ = load_model("results/fashion_mnist/model.pt")
    sched = scheduler_from_json(read_fitted_policy("results/fashion_mnist/schedulers/maxpred/0.5.json"))  # eenet.records
    preds, exits = adaptive_forward(model, sched, batch)

:func:`measure_runtime` times every fitted policy this way beside the plain network (every stage, the last head
only: what a user runs without early exit) and the all-heads forward ``model(x)``, within a time budget: policies
whose decisions are identical on the timed samples share one timing, and the number of samples is chosen so that
the estimated time fits ``seconds``; progress is logged every ~30 s with an estimate of the time left. The timed
samples are a seeded class-stratified random sample of the test set (:func:`stratified_sample`), never its first rows.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import torch

from eenet.data import Split
from eenet.inputs import Inputs, first_tensor
from eenet.measure.costs import run_plain, time_per_sample
from eenet.models import MultiExitNetwork, select_samples
from eenet.schedulers import ExitScheduler, StaticScheduler, realised_cost, scheduler_from_json

__all__ = [
    "runnable_policies",
    "log_runtime",
    "adaptive_forward", "run_split", "measure_policies", "compare_to_simulation", "plan_samples", "measure_runtime",
    "stratified_sample", "ProgressLog", "RUNTIME_FIELDS",
]  # fmt: skip

RUNTIME_FIELDS = [
    "bench", "method", "budget_value", "budget_ms", "batch_size", "samples", "measured_ms", "measured_q1", "measured_q3",
    "simulated_ms", "measured_vs_simulated", "plain_ms", "speedup_vs_plain", "test_simulated_ms", "speedup_vs_plain_test",
    "full_ms", "speedup_vs_full", "timing_shared_with",
    "accuracy", "exits_agree", "preds_agree", "exit_histogram", "threads", "device", "torch_version",
    "same_run_simulated_ms", "measured_vs_same_run",  # eenet.measure.overhead.same_run_check: batch 1
]  # fmt: skip
"""Columns of runtime.csv (rule measure_runtime): one row per policy and batch size; times in ms per sample.
``samples``: the test samples timed, a seeded class-stratified random sample (:func:`stratified_sample`); on them
``simulated_ms`` (their exit histogram x cost.csv), ``accuracy``, ``exits_agree``, ``preds_agree`` and
``speedup_vs_plain = plain_ms / measured_ms``. ``plain_ms``: the plain network (stages + last head). On the *whole*
test set: ``test_simulated_ms`` (the policy's cached exits of every test sample x cost.csv) and the speed-up quoted
for it, ``speedup_vs_plain_test = plain_ms / (measured_ms / simulated_ms * test_simulated_ms)``. ``full_ms``:
``model(x)``, every stage and head; ``timing_shared_with``: the policy whose timing this row carries because their
decisions were identical on the timed samples (empty: timed itself)."""


@torch.inference_mode()
def adaptive_forward(model: MultiExitNetwork, sched: ExitScheduler, x: Inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions and exit indices (``int64 [B]`` each, on the inputs' device) of a batch ``x`` under ``sched``."""
    if sched.requires_labels:
        raise ValueError(f"the {sched.method} policy looks at the labels: it cannot run as inference")
    if sched.num_exits_ != model.num_exits:
        raise ValueError(f"{sched.method} scheduler was fitted for {sched.num_exits_} exits, the model has {model.num_exits}")
    ref = first_tensor(x)
    b = ref.shape[0]
    last = model.num_exits - 1
    state = model.begin(x)
    seen: list[torch.Tensor] = []  # what the policy reads at exits 0..k of the samples still running, [n, C] each
    keep_raw = sched.needs_logits  # a combined policy reads what it kept of every exit so far
    raw: list[torch.Tensor] = []  # then: exit_state of exits 0..k of the samples still running, each computed once

    def outputs(k: int, logits: torch.Tensor) -> torch.Tensor:
        if not keep_raw:
            return sched.exit_outputs(k, (logits,))
        raw.append(sched.exit_state(k, logits))
        return sched.outputs_from_states(k, raw, logits)

    if b == 1:  # one sample: no bookkeeping of who is left, one Python decision per exit
        for k in range(model.num_exits):
            state, logits = model.step(k, state)
            seen.append(outputs(k, logits))
            if k == last or sched.leaves_one(k, seen):
                return seen[-1].argmax(dim=1), torch.tensor([k], device=ref.device)
    rows = torch.arange(b, device=ref.device)
    preds = torch.empty(b, dtype=torch.long, device=ref.device)
    exits = torch.empty(b, dtype=torch.long, device=ref.device)
    for k in range(model.num_exits):
        state, logits = model.step(k, state)
        probs = outputs(k, logits)
        seen.append(probs)
        leave = torch.ones(probs.shape[0], dtype=torch.bool, device=probs.device) if k == last else sched.leaves(k, seen)
        n_leave = int(leave.sum())
        if n_leave:
            preds[rows[leave]] = probs[leave].argmax(dim=1)
            exits[rows[leave]] = k
        if n_leave == probs.shape[0]:
            break
        if n_leave:
            keep = ~leave
            state = select_samples(state, keep)
            seen = [p[keep] for p in seen]
            raw[:] = [z[keep] for z in raw]
            rows = rows[keep]
    return preds, exits


def run_split(
    model: MultiExitNetwork, sched: ExitScheduler, split: Split, batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`adaptive_forward` over a whole split (test-time inputs): predictions and exits ``int64 [N]``, on the CPU."""
    preds, exits = [], []
    for x, _ in split.batches(batch_size, device):
        p, e = adaptive_forward(model, sched, x)
        preds.append(p.cpu())
        exits.append(e.cpu())
    return torch.cat(preds), torch.cat(exits)


class ProgressLog:
    """Log ``done / total`` at most every ``every`` seconds (and at the end), with the elapsed time and an estimate of
    the time left from the rate so far. Call it with ``(done, total)``."""

    def __init__(self, log: logging.Logger, what: str, every: float = 30.0) -> None:
        self.log, self.what, self.every = log, what, every
        self.start = self.last = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - self.last < self.every and done < total:
            return
        self.last = now
        elapsed = now - self.start
        left = elapsed / done * (total - done) if done else float("nan")
        self.log.info("%s: %d/%d (%.0f %%), %.0f s elapsed, ~%.0f s left", self.what, done, total, 100 * done / total, elapsed, left)


def _timing_key(sched: ExitScheduler, exits: torch.Tensor) -> tuple[str, bytes]:
    """Two policies of the same class that send every timed sample to the same exit do the same work."""
    return sched.family, exits.numpy().astype("int64").tobytes()


def measure_policies(
    model: MultiExitNetwork,
    policies: Mapping[str, ExitScheduler],
    batches: Sequence[Inputs],
    device: torch.device,
    warmup: int = 1,
    repeats: int = 5,
    chunk: int = 10,
    log: logging.Logger | None = None,
    what: str = "",
) -> dict[str, dict[str, Any]]:
    """Run every policy's adaptive inference over ``batches`` and time it beside the plain network and ``model(x)``.

    A first pass of every policy records its ``preds`` and ``exits`` (``int64 [N]``, CPU); it counts as the first of
    the ``warmup`` untimed passes. Policies of the same class whose exits are identical share the timing of the first
    of them (``timing_shared_with`` names it; empty for a policy timed itself). The rest is timed by
    :func:`eenet.measure.costs.time_per_sample` (``ms``, ``ms_q1``, ``ms_q3``; ``chunk`` batches at a time, the runs
    interleaved). Under the name ``"plain"`` the timing of the plain network (every stage, the last head:
    :func:`eenet.measure.costs.run_plain`), under ``"full"`` that of ``model(x)`` (every stage and head). With ``log``,
    progress is logged every ~30 s (``what`` names the measurement).
    """
    model.eval()
    out: dict[str, dict[str, Any]] = {}
    record = ProgressLog(log, f"{what}recording the decisions of every policy") if log else None
    leaders: dict[tuple[str, bytes], str] = {}
    for i, (name, sched) in enumerate(policies.items()):
        preds, exits = zip(*(adaptive_forward(model, sched, b) for b in batches), strict=True)
        out[name] = {"preds": torch.cat(preds).cpu(), "exits": torch.cat(exits).cpu()}
        leader = leaders.setdefault(_timing_key(sched, out[name]["exits"]), name)
        out[name]["timing_shared_with"] = "" if leader == name else leader
        if record:
            record(i + 1, len(policies))
    runs: dict[str, Callable[[Any], object]] = {"plain": partial(run_plain, model), "full": model}
    if warmup:  # the baselines' first untimed pass (the policies' was the recording pass)
        for run in runs.values():
            for b in batches:
                run(b)
    runs.update({name: partial(adaptive_forward, model, policies[name]) for name in leaders.values()})
    if log:
        n = sum(first_tensor(b).shape[0] for b in batches)
        log.info("%s%d policies, %d distinct timings (policies that decide alike share one), %d samples",
                 what, len(policies), len(leaders), n)  # fmt: skip
    timing = time_per_sample(runs, batches, device, max(warmup - 1, 0), repeats, chunk, ProgressLog(log, f"{what}timing") if log else None)
    for name, t in timing.items():
        out.setdefault(name, {}).update(t)
    for r in out.values():
        if r.get("timing_shared_with"):
            r.update({k: timing[r["timing_shared_with"]][k] for k in ("ms", "ms_q1", "ms_q3")})
    return out


def compare_to_simulation(
    result: Mapping[str, Any],
    full: Mapping[str, float],
    costs_ms: Sequence[float],
    num_exits: int,
    plain: Mapping[str, float] | None = None,
    test_exits: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Measured against simulated for one policy of :func:`measure_policies`: its ``result``, the ``full`` model's
    (``model(x)``) and the ``plain`` network's timing.

    ``simulated_ms`` is the cost model's prediction for the same samples: the runtime's own exit histogram
    times the per-exit costs ``costs_ms [K]`` (the policy's ``costs_``: cost.csv's, plus its own decisions where fitted
    so). Returns that, the measured median and quartiles, ``full_ms``, ``plain_ms``, ``measured_vs_simulated``,
    ``speedup_vs_full``, ``speedup_vs_plain`` (the plain network's time over the policy's, on the timed samples),
    ``timing_shared_with`` and the ``exit_histogram`` (``K`` counts, as JSON text). With ``test_exits`` (cached exits
    of the whole test set, ``int64 [N]``) also their cost ``test_simulated_ms`` and ``speedup_vs_plain_test``.
    """
    exits = result["exits"]
    simulated = realised_cost(exits, torch.tensor(costs_ms, dtype=torch.float64))
    row = {
        "simulated_ms": simulated,
        "measured_ms": result["ms"],
        "measured_q1": result["ms_q1"],
        "measured_q3": result["ms_q3"],
        "full_ms": full["ms"],
        "measured_vs_simulated": result["ms"] / simulated,
        "speedup_vs_full": full["ms"] / result["ms"],
        "timing_shared_with": result.get("timing_shared_with", ""),
        "exit_histogram": json.dumps(torch.bincount(exits, minlength=num_exits).tolist()),
    }
    if plain is not None:
        row.update({"plain_ms": plain["ms"], "speedup_vs_plain": plain["ms"] / result["ms"]})
    if test_exits is not None:
        row["test_simulated_ms"] = realised_cost(test_exits, torch.tensor(costs_ms, dtype=torch.float64))
        if plain is not None:
            row["speedup_vs_plain_test"] = plain["ms"] / (result["ms"] / simulated * row["test_simulated_ms"])
    return row


def stratified_sample(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """A seeded random sample of ``n`` of the samples labelled ``labels`` (``int64 [N]``), stratified by class: sorted
    indices ``int64 [min(n, N)]`` without duplicates, the same for the same arguments; ``n >= N``: every index.
    Class ``c`` (``N_c`` samples) gets ``floor(n N_c / N)`` or one more (largest remainder), drawn uniformly within the
    class; when ``n`` >= the number of classes every class gets one, taken where needed from the class furthest above
    its share (only then is a class more than one off its share)."""
    total = labels.numel()
    if n >= total:
        return torch.arange(total)
    classes, counts = labels.unique(return_counts=True)  # sorted classes
    exact = n * counts.double() / total
    alloc = exact.floor().long()
    cover = n >= len(classes)
    # the seats left: first to the classes that would get none (when every class can have one), then by remainder
    order = sorted(range(len(classes)), key=lambda c: (not (cover and alloc[c] == 0), -float(exact[c] - alloc[c]), c))
    for c in order[: n - int(alloc.sum())]:
        alloc[c] += 1
    while cover and bool((alloc == 0).any()):  # more tiny classes than seats left: take from the largest surplus
        alloc[int(torch.where(alloc > 1, alloc - exact, -math.inf).argmax())] -= 1
        alloc[int((alloc == 0).nonzero()[0])] += 1
    g = torch.Generator().manual_seed(seed)
    members = [(labels == c).nonzero().squeeze(1) for c in classes.tolist()]
    picked = [m[torch.randperm(m.numel(), generator=g)[:a]] for m, a in zip(members, alloc.tolist(), strict=True)]
    return torch.cat(picked).sort().values


def plan_samples(
    cached_exits: Mapping[str, torch.Tensor],
    policies: Mapping[str, ExitScheduler],
    costs_ms: Sequence[float],
    available: int,
    seconds: float | None,
    passes: int,
    batch_sizes: int,
    min_samples: int,
) -> tuple[int, float]:
    """How many test samples to time so that the measurement's estimated duration fits ``seconds``.

    The estimate is the cost model's: a policy's pass over a sample costs its simulated cost (``costs_ms`` at its
    cached exit, ``cached_exits[name]`` ``int64 [N]``); every policy makes one recording pass, every distinct
    timing (same class, same exits) and the two baselines (plain network and ``model(x)``, each ~ the last exit's
    cost) make ``passes - 1`` more; each of the ``batch_sizes`` batch sizes repeats it (a larger batch is counted
    at batch 1's cost, an over-estimate on most hardware). Returns ``(samples, estimated seconds)``:
    ``min(available, the most that fit)``, but at least ``min(min_samples, available)``; ``seconds=None`` times all.
    """
    c = torch.tensor(costs_ms, dtype=torch.float64)
    per_sample_ms = 2 * passes * float(c[-1])  # the plain network and model(x)
    seen = set()
    for name, exits in cached_exits.items():
        sim = float(c[exits].mean())
        key = _timing_key(policies[name], exits)
        per_sample_ms += sim * (1 + (passes - 1) * (key not in seen))
        seen.add(key)
    per_sample_s = per_sample_ms * batch_sizes / 1000.0
    if seconds is None:
        n = available
    else:
        n = max(min(min_samples, available), min(available, math.floor(seconds / per_sample_s)))
    return n, n * per_sample_s


def measure_runtime(
    model: MultiExitNetwork,
    policies: Mapping[str, ExitScheduler],
    inputs: Callable[[torch.Tensor, torch.device], Inputs],
    probs: torch.Tensor,
    labels: torch.Tensor,
    costs_ms: Sequence[float],
    cfg: Mapping[str, Any],
    device: torch.device,
    log: logging.Logger,
    logits: torch.Tensor | None = None,
) -> list[dict[str, Any]]:
    """Time every policy through the adaptive runtime, at batch 1 and at ``cfg["batch_size"]``, within a time budget.

    Args:
        policies: name -> fitted policy (no oracle: it reads the labels).
        inputs: ``inputs(indices int64 [n], device)`` -> the test inputs of those samples (a split's ``inputs``).
        probs: the cached test probabilities ``[K, N, C]`` of the same samples; ``labels`` ``int64 [N]``; ``logits``
            the cached raw logits ``[K, N, C]`` (needed by policies with a combiner, :mod:`eenet.combiners`).
        costs_ms: cost.csv's per-exit costs ``[K]``.
        cfg: the benchmark's ``runtime`` block: ``samples`` (at most; ``None``: all), ``seconds`` (time budget of the
            whole measurement, estimated by :func:`plan_samples` on the cost of the whole test set; ``None``: no
            bound), ``min_samples``, ``batch_size``, ``warmup``, ``repeats``, ``seed`` (of the sample; default 0).
    Returns:
        One row per policy and batch size: :func:`compare_to_simulation` (with the whole test set's
        ``test_simulated_ms`` and ``speedup_vs_plain_test``) plus ``method``-free fields ``name``, ``batch_size``,
        ``samples``, ``accuracy`` and how often the runtime's exits and predictions equal the cached evaluation's of
        the same samples (``exits_agree``, ``preds_agree``). The caller adds what names the policy and the run.

    The timed samples are :func:`stratified_sample` of ``labels`` (``cfg["seed"]``), however the test split is ordered.
    """
    from eenet.schedulers import exit_predictions

    num_test = probs.shape[1]
    total = num_test if cfg.get("samples") is None else min(cfg["samples"], num_test)
    cache = {"probs": probs, **({} if logits is None else {"logits": logits})}
    outs = {name: sched.outputs(cache) for name, sched in policies.items()}
    cached = {name: sched.assign(outs[name]) for name, sched in policies.items()}  # the whole test set's exits
    batch_sizes = sorted({1, cfg["batch_size"]})
    passes = max(cfg["warmup"], 1) + cfg["repeats"]
    n, estimate = plan_samples(cached, policies, costs_ms, total, cfg.get("seconds"), passes, len(batch_sizes), cfg.get("min_samples", 100))
    seed = cfg.get("seed", 0)
    sample = stratified_sample(labels, n, seed)
    log.info(
        "%d policies on %d test samples (of %d asked: runtime.seconds = %s; of %d in the test set, a random sample "
        "stratified by class, seed %d), batch sizes %s; estimated %.0f s",
        len(policies), n, total, cfg.get("seconds"), num_test, seed, batch_sizes, estimate,
    )  # fmt: skip
    labels = labels[sample]
    num_exits = probs.shape[0]
    rows = []
    for bs in batch_sizes:
        t0 = time.perf_counter()
        batches = [inputs(sample[i : i + bs], device) for i in range(0, n, bs)]
        res = measure_policies(model, policies, batches, device, cfg["warmup"], cfg["repeats"], log=log, what=f"batch {bs}: ")
        log.info(
            "batch %d: plain network %.4f ms/sample, model(x) %.4f ms/sample (%.0f s)",
            bs, res["plain"]["ms"], res["full"]["ms"], time.perf_counter() - t0,
        )  # fmt: skip
        for name in policies:
            r = res[name]
            want = cached[name][sample]
            rows.append({
                "name": name, "batch_size": bs, "samples": n,
                **compare_to_simulation(r, res["full"], policies[name].costs_, num_exits, res["plain"], cached[name]),
                "accuracy": float((r["preds"] == labels).float().mean()),
                "exits_agree": float((r["exits"] == want).float().mean()),
                "preds_agree": float((r["preds"] == exit_predictions(outs[name][:, sample], want)).float().mean()),
            })  # fmt: skip
    return rows


def runnable_policies(
    fitted: Sequence[Mapping[str, Any]], probs: torch.Tensor, labels: torch.Tensor, costs_ms: Sequence[float]
) -> tuple[dict[str, ExitScheduler], dict[str, dict[str, Any]]]:
    """What the runtime can run, by name: every fitted policy (the JSON of ``schedulers/<method>/<budget>.json``) but the
    oracle, alone or after a combiner (it reads the labels), and an infeasible fit, as ``<method>/<budget>``, and every single exit as
    ``static_exit<k>``; with each its ``method``, ``budget_value`` and ``budget_ms`` for runtime.csv.
    ``probs [K, N, C]`` and ``labels [N]``: the cached test outputs the single exits are fitted on."""
    from eenet.catalog import split_method

    policies: dict[str, ExitScheduler] = {}
    info: dict[str, dict[str, Any]] = {}
    for f in fitted:
        if f.get("infeasible") or split_method(f["method"])[1] == "oracle":  # "ztw_ens+oracle" reads them too
            continue
        name = f"{f['method']}/{f['budget_value']}"
        policies[name] = scheduler_from_json(dict(f))
        info[name] = {"method": f["method"], "budget_value": f["budget_value"], "budget_ms": f["budget_ms"]}
    for k in range(probs.shape[0]):
        policies[f"static_exit{k}"] = StaticScheduler(exit_index=k).fit(probs, labels, list(costs_ms), costs_ms[k])
        info[f"static_exit{k}"] = {"method": f"static_exit{k}", "budget_value": "", "budget_ms": costs_ms[k]}
    return policies, info


def log_runtime(log: logging.Logger, table: Sequence[Mapping[str, Any]]) -> None:
    """A line per runtime.csv row: measured vs simulated, the whole test set's speed-up over the plain network, agreement."""
    for r in table:
        log.info("batch %d %-14s %-5s measured %.4f ms (simulated %.4f, x%.3f) on %d samples, speed-up x%.2f over the "
                 "plain network on the whole test set (simulated %.4f ms), exits as cached %.4f",
                 r["batch_size"], r["method"], r["budget_value"], r["measured_ms"], r["simulated_ms"], r["measured_vs_simulated"],
                 r["samples"], r["speedup_vs_plain_test"], r["test_simulated_ms"], r["exits_agree"])  # fmt: skip
