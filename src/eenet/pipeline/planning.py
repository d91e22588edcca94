"""What the workflow plans from a config, as plain functions of the benchmark blocks (``rules/common.smk`` wraps
them for Snakemake's wildcards): the policies of a benchmark, their hyper-parameters, the reliability study's
policies, the examples' policy and budget, the default targets, the plain networks trained alone for the frontier.

A benchmark block ``b`` is the config's ``benchmarks.<name>`` with the schema's defaults filled in (one run of it:
see :func:`eenet.pipeline.runs.expand_seed_runs`). Standard library only (the Snakefile imports this module).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from eenet.catalog import METHOD_PATTERN, METHODS, compose_method, split_method

__all__ = [
    "METHOD_PATTERN", "GUARDED", "compiled_methods", "known_policy", "policy_methods", "combined_methods", "hyper_params",
    "study_methods", "example_policy", "all_targets",
    "FRONTIER_ARCHS", "FRONTIER_PATTERN", "frontier_arch", "frontier_networks", "frontier_kwargs", "frontier_models", "frontier_files",
    "seed_frontier_files",
]  # fmt: skip

GUARDED = [m for m in METHODS if f"{m}_guard" in METHODS]
"""The policies with a guaranteed variant (``<m>_guard``)."""


def policy_methods(b: Mapping[str, Any]) -> list[str]:
    """Every policy of a benchmark: its methods, then each combiner composed with each (``"ztw_ens+maxpred"``)."""
    return list(b["methods"]) + combined_methods(b)


def combined_methods(b: Mapping[str, Any]) -> list[str]:
    """The combined policies of a benchmark: each combiner composed with each of its methods (``"ztw_ens+maxpred"``)."""
    return [compose_method(c, m) for c in b.get("combiners", []) for m in b["methods"]]


def compiled_methods(b: Mapping[str, Any]) -> list[str]:
    """The policies a benchmark times compiled (``compiled.methods``; rule measure_compiled): none by default."""
    return list((b.get("compiled") or {}).get("methods") or [])


def known_policy(method: str) -> tuple[str | None, str]:
    """``(combiner, method)`` of a policy's name (:func:`eenet.catalog.split_method`: an unknown combiner raises);
    ``ValueError`` for a method that is not in :data:`eenet.catalog.METHODS`."""
    comb, policy = split_method(method)
    if policy not in METHODS:
        raise ValueError(f"unknown method {policy!r}; known: {sorted(METHODS)}")
    return comb, policy


def hyper_params(b: Mapping[str, Any], method: str) -> dict[str, Any]:
    """A policy's hyper-parameters: the ``eenet`` block for EENet and its ablations, the ``guarantee`` block for the
    guaranteed policies (:data:`eenet.catalog.METHODS`' ``config``), and the scheduler seed; a combined policy
    (``<combiner>+<method>``) takes its method's, and the benchmark's ``combiner_fit`` block (where it has one: the
    schema fills it in) under ``combiner_fit``, its ``seed`` the scheduler seed unless it names one
    (:func:`eenet.schedulers.compose.fit_combiner`). The fit keeps what the method's constructor accepts."""
    comb, policy = known_policy(method)
    config_block = METHODS[policy]["config"]
    block = b.get(config_block, {}) if config_block else {}
    out = {**block, "seed": b["scheduler_seed"]}
    if comb is not None and "combiner_fit" in b:
        fit = dict(b["combiner_fit"])
        out["combiner_fit"] = {**fit, "seed": b["scheduler_seed"] if fit.get("seed") is None else fit["seed"]}
    return out


def study_methods(b: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The policies of the reliability study and their hyper-parameters: ``reliability.methods``, or the benchmark's
    methods less the oracle plus the guaranteed variant of each threshold policy among them, then each of the
    benchmark's combiners composed with each of those (``ztw_ens+maxpred``, ``ztw_ens+maxpred_guard``)."""
    names = b["reliability"]["methods"]
    if not names:
        alone = [m for m in b["methods"] if m != "oracle"]
        alone += [f"{m}_guard" for m in b["methods"] if m in GUARDED and f"{m}_guard" not in b["methods"]]
        names = alone + [compose_method(c, m) for c in b.get("combiners", []) for m in alone]
    return {m: hyper_params(b, m) for m in names}


def example_policy(b: Mapping[str, Any]) -> tuple[str, str]:
    """``(method, budget value)`` whose examples exit_analysis shows: ``examples.method`` (default: EENet if fitted,
    else the first method that is not the oracle) at ``examples.budget`` (default: the middle budget)."""
    ex, methods = b["examples"], b["methods"]
    method = ex.get("method") or ("eenet" if "eenet" in methods else next((m for m in methods if m != "oracle"), methods[0]))
    if method not in methods:
        raise ValueError(f"examples.method {method!r} is not among the benchmark's methods: {', '.join(methods)}")
    values = sorted(b["budgets"]["values"])
    budget = ex.get("budget", values[len(values) // 2])
    if budget not in values:
        raise ValueError(f"examples.budget {budget} is not among the benchmark's budgets: {values}")
    return method, str(budget)


def all_targets(runs: Sequence[str], seeded: Mapping[str, Sequence[str]], compiled: Sequence[str] = ()) -> list[str]:
    """The files of ``snakemake all``: every benchmark's curve and tables (the aggregate for one with several seeds:
    its runs' come with it), every run's examples, the reliability study of every benchmark with one seed, and the
    compiled timing (compiled.csv) of the runs in ``compiled`` (those with ``compiled.methods``).
    ``runs``: every run (:func:`eenet.pipeline.runs.expand_seed_runs`' first value), ``seeded``: benchmark -> its runs."""
    of_seeds = {r for rs in seeded.values() for r in rs}
    single = [b for b in runs if b not in of_seeds]
    tops = single + list(seeded)
    return (
        [f"results/{b}/{name}" for b in tops for name in ("curve.pdf", "tables.html")]
        + [f"results/{b}/examples.pdf" for b in runs]
        + [f"results/{b}/reliability.pdf" for b in single]
        + [f"results/{b}/compiled.csv" for b in runs if b in compiled]
    )


FRONTIER_ARCHS: dict[str, dict[str, Any]] = {
    "small_cnn_3": {"exits": 3, "width": 32},
    "resnet_6": {"exits": "blocks", "blocks": [2, 2, 2], "width": 16},
}
"""The built-in architectures whose builder takes ``depth`` (the plain network of the first ``depth`` stages with that
exit's head only, :func:`eenet.models.base.single_exit`) and ``width``, so that the frontier can train their plain
networks alone (``frontier.trained``): their number of exits (``"blocks"``: the sum of ``arch_kwargs.blocks``, default
``blocks``) and their default width, as the builders have them (tests/test_frontier.py holds this to them)."""


def frontier_arch(arch: str, arch_kwargs: Mapping[str, Any]) -> tuple[int, int]:
    """``(exits, width)`` of ``arch`` built with ``arch_kwargs`` (:data:`FRONTIER_ARCHS`); ``ValueError`` for an
    architecture that cannot build its plain networks alone."""
    if arch not in FRONTIER_ARCHS:
        raise ValueError(
            f"frontier.trained: {arch} cannot build its plain networks alone (no depth and width keywords); use one of "
            f"{', '.join(FRONTIER_ARCHS)}, or frontier.trained: false (the frontier is then the network cut after each exit)"
        )
    entry = FRONTIER_ARCHS[arch]
    exits = sum(arch_kwargs.get("blocks", entry["blocks"])) if entry["exits"] == "blocks" else entry["exits"]
    return int(exits), int(arch_kwargs.get("width", entry["width"]))


FRONTIER_PATTERN = r"depth[0-9]+|width[0-9]+(\.[0-9]+)?"
"""The names of the frontier's networks trained alone (:func:`frontier_networks`)."""


def frontier_networks(b: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The plain networks a run trains alone for its frontier (config ``frontier``), each name -> its ``arch_kwargs``
    (the benchmark's own, overridden), in the order the frontier lists them; ``{}`` when ``frontier.trained`` is off.

    ``depth<k>``, for each ``k`` of ``frontier.depths`` (default: every exit, ``1..K``): the first ``k`` stages with
    exit ``k - 1``'s head only, the architecture of the multi-exit network cut after exit ``k - 1``
    (``arch_kwargs.depth``); ``width<m>``, for each ``m`` of ``frontier.widths``: the whole plain network (``depth = K``)
    at ``m`` times the benchmark's width, rounded (``depth<K>`` is ``m = 1``). Each is trained with the benchmark's
    recipe (split, ``train`` block, seed). ``{}`` too for a run whose training seed ``frontier.seeds`` leaves out (its
    frontier is the cuts). ``ValueError`` for an architecture without ``depth`` and ``width`` (:data:`FRONTIER_ARCHS`),
    a depth outside ``1..K`` or a width that rounds to 0."""
    f = b.get("frontier") or {}
    if not f.get("trained"):
        return {}
    seed = (b.get("train") or {}).get("seed", 0)
    if f.get("seeds") is not None and not isinstance(seed, list) and seed not in f["seeds"]:
        return {}
    kwargs = dict(b.get("arch_kwargs") or {})
    exits, width = frontier_arch(b["arch"], kwargs)
    depths = f.get("depths") or list(range(1, exits + 1))
    bad = [d for d in depths if not 1 <= d <= exits]
    if bad:
        raise ValueError(f"frontier.depths {bad}: {b['arch']} has {exits} exits (depths 1..{exits})")
    nets = {f"depth{d}": {**kwargs, "depth": d} for d in depths}
    for m in f.get("widths", []):
        w = round(width * m)
        if w < 1:
            raise ValueError(f"frontier.widths {m}: {m} x width {width} rounds to {w} channels")
        nets[f"width{float(m)}"] = {**kwargs, "width": w, "depth": exits}
    odd = [n for n in nets if not re.fullmatch(FRONTIER_PATTERN, n)]
    if odd:
        raise ValueError(f"frontier.widths: write each as a decimal number (got the names {odd})")
    return nets


def frontier_kwargs(run: str, b: Mapping[str, Any], net: str) -> dict[str, Any]:
    """The ``arch_kwargs`` of the frontier network ``net`` of ``run`` (:func:`frontier_networks`); ``ValueError``
    naming the networks the run has for another name."""
    nets = frontier_networks(b)
    if net not in nets:
        raise ValueError(f"results/{run}/frontier/{net}: not a frontier network of this run (frontier.trained, depths and widths "
                         f"give: {', '.join(nets) or 'none'})")  # fmt: skip
    return nets[net]


def frontier_models(run: str, b: Mapping[str, Any]) -> list[str]:
    """The model of every network ``run`` trains alone for its frontier (:func:`frontier_networks`)."""
    return [f"results/{run}/frontier/{n}/model.pt" for n in frontier_networks(b)]


def frontier_files(run: str, b: Mapping[str, Any]) -> list[str]:
    """What the frontier of a run with networks trained alone adds to its statistics and figure: frontier.csv (every
    network timed in one run beside the multi-exit network's cuts), then each network's cached test outputs, in the
    order of :func:`frontier_networks`; ``[]`` when ``frontier.trained`` is off (the frontier is then cost.csv's cuts)."""
    nets = frontier_networks(b)
    if not nets:
        return []
    return [f"results/{run}/frontier.csv"] + [f"results/{run}/frontier/{n}/logits/test.safetensors" for n in nets]


def seed_frontier_files(runs: Sequence[str], benchmarks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """:func:`frontier_files` of every run of a seed study (``runs``: its runs, ``benchmarks``: every run's config), in
    the order of the runs: what the study's aggregate reads to compare each seed with its own frontier."""
    return [f for run in runs for f in frontier_files(run, benchmarks[run])]
