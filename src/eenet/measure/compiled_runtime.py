"""The compiled runtime, timed: fitted policies run as AOTInductor-compiled segments (:mod:`eenet.compiled`, what
``eenet export --compiled`` writes and ``eenet predict --compiled`` runs) beside the network cut after each exit,
compiled the same way (the plain network is the last cut), and beside the eager runtime of the same policies, all in
one interleaved run at batch 1 -> compiled.csv (rule measure_compiled).

One compiled program serves every fit of the same structure (:func:`eenet.compiled.structure_key`): what a policy
learned (thresholds, temperatures, EENet's weights, a combiner's tensors) is given to the segments as inputs, so a
threshold policy's budgets share one compile. The timed samples are the runtime's (:func:`eenet.measure.runtime.stratified_sample`
of the test set, the same seed), and the whole test set's figures are scaled from them as runtime.csv's are: the
compiled time over the sample's simulated cost, times the whole test set's simulated cost.
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from eenet.data import DatasetSpec, Split, normalize
from eenet.data.images import ImageSplit
from eenet.measure.costs import run_cut, time_per_sample
from eenet.measure.runtime import ProgressLog, adaptive_forward, stratified_sample
from eenet.models import MultiExitNetwork
from eenet.schedulers import ExitScheduler, exit_predictions, realised_cost

__all__ = ["COMPILED_FIELDS", "compile_groups", "decoded_images", "measure_compiled"]

COMPILED_FIELDS = [
    "bench", "method", "budget_value", "budget_ms", "kind", "exit", "samples", "compiled_ms", "compiled_q1", "compiled_q3",
    "eager_ms", "compiled_vs_eager", "simulated_ms", "test_simulated_ms", "test_compiled_ms", "plain_compiled_ms", "plain_eager_ms",
    "speedup_vs_plain", "speedup_vs_plain_test", "accuracy", "test_accuracy", "exits_agree", "preds_agree", "exit_histogram",
    "compile_s", "compiled_with", "threads", "device", "torch_version",
]  # fmt: skip
"""Columns of compiled.csv: one row per policy (``kind`` ``policy``) and per cut of the network (``kind`` ``cut``,
``method`` ``cut<k>``, ``exit`` k; the last is the plain network); ms per sample at batch 1 on the timed ``samples``.
``compiled_ms`` (quartiles of whole passes), ``eager_ms``: the same policy through the eager runtime
(:func:`eenet.measure.runtime.adaptive_forward`; a cut: :func:`eenet.measure.costs.run_cut`), timed in the same run;
``simulated_ms``: the sample's exit histogram x the policy's costs (cost.csv's, eager); ``test_simulated_ms``: the whole
test set's; ``test_compiled_ms = compiled_ms / simulated_ms * test_simulated_ms`` (a cut: ``compiled_ms``);
``speedup_vs_plain`` (on the sample) and ``speedup_vs_plain_test`` (whole test set): the compiled plain network's time
over the policy's compiled time. ``accuracy`` on the sample, ``test_accuracy`` on the whole test set (the cached
evaluation: the policy's exits, or the cut's exit); ``exits_agree`` / ``preds_agree``: the compiled runtime's exits and
answers against the cached evaluation's on the sample. ``compile_s``: the compile of the program the row ran
(``compiled_with``: the policy it was compiled for, whose structure this one shares)."""


def decoded_images(split: Split, idx: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """The images of ``split`` at ``idx`` as the compiled program takes them, ``uint8 [n, C, S, S]`` (pixel values as
    decoded, before the normalisation ``mean`` / ``std``): an in-memory split's own; otherwise (an image folder, decoded
    on the fly and resized as for evaluation) its evaluation inputs with the normalisation undone, which gives back the
    decoded values exactly (within 1e-4 of them before rounding)."""
    if isinstance(split, ImageSplit):
        return split.images[idx]
    x = split.inputs(idx, torch.device("cpu"))
    assert isinstance(x, torch.Tensor)  # an image split's inputs
    m, s = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
    return (x * s + m).mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)


def compile_groups(
    model: MultiExitNetwork,
    policies: Mapping[str, ExitScheduler],
    spec: DatasetSpec,
    meta: Mapping[str, Any],
    folder: Path,
    log: logging.Logger | None = None,
) -> dict[str, tuple[Any, str, float]]:
    """Compile one swappable package per structure of ``policies`` (:func:`eenet.compiled.structure_key`) into
    ``folder``: name -> ``(CompiledPolicy using that policy's learned tensors, the policy compiled for, its compile s)``."""
    from eenet.compiled import CompiledPolicy, compile_policy, structure_key
    from eenet.export import ExitProgram

    assert spec.mean is not None and spec.std is not None
    out: dict[str, tuple[Any, str, float]] = {}
    loaded: dict[str, tuple[CompiledPolicy, str, float]] = {}
    for name, sched in policies.items():
        program = ExitProgram(model, sched, spec.mean, spec.std).eval()
        key = json.dumps(structure_key(program))
        if key not in loaded:
            start = time.perf_counter()
            path = compile_policy(model, sched, spec, dict(meta), folder / f"p{len(loaded)}.pt2", {"method": sched.method}, swappable=True)
            seconds = time.perf_counter() - start
            loaded[key] = (CompiledPolicy.load(path), name, seconds)
            if log:
                log.info("compiled %s (%d exits) in %.0f s: %d programs so far", name, model.num_exits, seconds, len(loaded))
        policy, leader, seconds = loaded[key]
        out[name] = (copy.copy(policy).use(program), leader, seconds)  # the same loaded programs, its own learned tensors
    return out


def measure_compiled(
    model: MultiExitNetwork,
    policies: Mapping[str, ExitScheduler],
    spec: DatasetSpec,
    meta: Mapping[str, Any],
    images: Callable[[torch.Tensor], torch.Tensor],
    probs: torch.Tensor,
    labels: torch.Tensor,
    costs_ms: list[float],
    cfg: Mapping[str, Any],
    log: logging.Logger,
    logits: torch.Tensor | None = None,
) -> list[dict[str, Any]]:
    """Compile ``policies`` and every cut of ``model``, and time them at batch 1 beside their eager runs.

    Args:
        policies: name -> fitted policy (none that reads the labels); the caller names them in the rows.
        images: ``images(indices int64 [n])`` -> those test images ``uint8 [n, C, S, S]`` as decoded
            (:func:`decoded_images`); ``probs`` / ``logits``: the test set's cached outputs ``[K, N, C]``; ``labels``
            ``int64 [N]``; ``costs_ms``: cost.csv's per-exit costs ``[K]``.
        cfg: ``samples`` (timed; at most the test set), ``seed`` (the runtime's sample seed), ``warmup``, ``repeats``.
    Returns:
        compiled.csv's rows (:data:`COMPILED_FIELDS`) with ``name`` (the policy's, or ``cut<k>``) instead of what names
        the policy and the run.
    """
    from eenet.compiled import CompiledCut, compile_cut

    assert spec.mean is not None and spec.std is not None
    model = model.cpu().eval()
    cache = {"probs": probs, **({} if logits is None else {"logits": logits})}
    outs = {name: sched.outputs(cache) for name, sched in policies.items()}
    cached = {name: sched.assign(outs[name]) for name, sched in policies.items()}
    sample = stratified_sample(labels, int(cfg["samples"]), int(cfg.get("seed", 0)))
    n, num_exits = sample.numel(), probs.shape[0]
    sampled = images(sample)
    batches = [sampled[i : i + 1].contiguous() for i in range(n)]
    mean, std = spec.mean, spec.std
    with tempfile.TemporaryDirectory(prefix="eenet-compiled-") as tmp:
        start = time.perf_counter()
        programs = compile_groups(model, policies, spec, meta, Path(tmp), log)
        cuts, cut_s = {}, {}
        for k in range(num_exits):
            t0 = time.perf_counter()
            cuts[f"cut{k}"] = CompiledCut(compile_cut(model, spec, k, Path(tmp) / f"cut{k}.pt2"))
            cut_s[f"cut{k}"] = time.perf_counter() - t0
        log.info("compiled %d policy programs and %d cuts in %.0f s", len({v[1] for v in programs.values()}), num_exits,
                 time.perf_counter() - start)  # fmt: skip
        with torch.inference_mode():
            answers = {name: [runner(b)[:2] for b in batches] for name, (runner, _, _) in programs.items()}
        runs: dict[str, Callable[[Any], object]] = {}
        for k in range(num_exits):
            runs[f"cut{k}/compiled"] = cuts[f"cut{k}"]
            runs[f"cut{k}/eager"] = lambda b, k=k: run_cut(model, normalize(b, mean, std), k)
        for name, (runner, _, _) in programs.items():
            runs[f"{name}/compiled"] = runner
            runs[f"{name}/eager"] = lambda b, s=policies[name]: adaptive_forward(model, s, normalize(b, mean, std))
        log.info("timing %d runs (compiled and eager) on %d test samples at batch 1", len(runs), n)
        timing = time_per_sample(runs, batches, torch.device("cpu"), cfg["warmup"], cfg["repeats"], progress=ProgressLog(log, "timing"))
    last = f"cut{num_exits - 1}"
    plain_c, plain_e = timing[f"{last}/compiled"]["ms"], timing[f"{last}/eager"]["ms"]
    common = {"samples": n, "plain_compiled_ms": plain_c, "plain_eager_ms": plain_e}
    rows = []
    for k in range(num_exits):
        c, e = timing[f"cut{k}/compiled"], timing[f"cut{k}/eager"]
        rows.append({
            "name": f"cut{k}", "kind": "cut", "exit": k, **common, "compiled_ms": c["ms"], "compiled_q1": c["ms_q1"],
            "compiled_q3": c["ms_q3"], "eager_ms": e["ms"], "compiled_vs_eager": c["ms"] / e["ms"], "test_compiled_ms": c["ms"],
            "speedup_vs_plain": plain_c / c["ms"], "speedup_vs_plain_test": plain_c / c["ms"],
            "accuracy": float((probs[k, sample].argmax(dim=1) == labels[sample]).float().mean()),
            "test_accuracy": float((probs[k].argmax(dim=1) == labels).float().mean()), "compile_s": round(cut_s[f"cut{k}"], 1),
        })  # fmt: skip
    for name, sched in policies.items():
        got = answers[name]
        exits = torch.tensor([a[1] for a in got], dtype=torch.int64)
        preds = torch.tensor([a[0] for a in got], dtype=torch.int64)
        want = cached[name][sample]
        c, e = timing[f"{name}/compiled"], timing[f"{name}/eager"]
        costs = torch.tensor(sched.costs_, dtype=torch.float64)
        sim, test_sim = realised_cost(exits, costs), realised_cost(cached[name], costs)
        test_c = c["ms"] / sim * test_sim
        rows.append({
            "name": name, "kind": "policy", "exit": "", **common, "compiled_ms": c["ms"], "compiled_q1": c["ms_q1"],
            "compiled_q3": c["ms_q3"], "eager_ms": e["ms"], "compiled_vs_eager": c["ms"] / e["ms"], "simulated_ms": sim,
            "test_simulated_ms": test_sim, "test_compiled_ms": test_c, "speedup_vs_plain": plain_c / c["ms"],
            "speedup_vs_plain_test": plain_c / test_c, "accuracy": float((preds == labels[sample]).float().mean()),
            "test_accuracy": float((exit_predictions(outs[name], cached[name]) == labels).float().mean()),
            "exits_agree": float((exits == want).float().mean()),
            "preds_agree": float((preds == exit_predictions(outs[name][:, sample], want)).float().mean()),
            "exit_histogram": json.dumps(torch.bincount(exits, minlength=num_exits).tolist()),
            "compile_s": round(programs[name][2], 1), "compiled_with": programs[name][1],
        })  # fmt: skip
    return rows
