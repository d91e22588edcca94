"""What the workflow plans from a config, as plain functions of the benchmark blocks (``rules/common.smk`` wraps
them for Snakemake's wildcards): the policies of a benchmark, their hyper-parameters, the reliability study's
policies, the examples' policy and budget, the default targets.

A benchmark block ``b`` is the config's ``benchmarks.<name>`` with the schema's defaults filled in (one run of it:
see :func:`eenet.pipeline.runs.expand_seed_runs`). Standard library only (the Snakefile imports this module).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eenet.catalog import METHOD_PATTERN, METHODS, compose_method, split_method

__all__ = [
    "METHOD_PATTERN", "GUARDED", "policy_methods", "combined_methods", "hyper_params", "study_methods", "example_policy", "all_targets",
]  # fmt: skip

GUARDED = [m for m in METHODS if f"{m}_guard" in METHODS]
"""The policies with a guaranteed variant (``<m>_guard``)."""


def policy_methods(b: Mapping[str, Any]) -> list[str]:
    """Every policy of a benchmark: its methods, then each combiner composed with each (``"ztw_ens+maxpred"``)."""
    return list(b["methods"]) + combined_methods(b)


def combined_methods(b: Mapping[str, Any]) -> list[str]:
    """The combined policies of a benchmark: each combiner composed with each of its methods (``"ztw_ens+maxpred"``)."""
    return [compose_method(c, m) for c in b.get("combiners", []) for m in b["methods"]]


def hyper_params(b: Mapping[str, Any], method: str) -> dict[str, Any]:
    """A policy's hyper-parameters: the ``eenet`` block for EENet and its ablations, the ``guarantee`` block for the
    guaranteed policies (:data:`eenet.catalog.METHODS`' ``config``), and the scheduler seed; a combined policy
    (``<combiner>+<method>``) takes its method's. The fit keeps what the method's constructor accepts."""
    policy = split_method(method)[1]
    if policy not in METHODS:
        raise ValueError(f"unknown method {policy!r}; known: {sorted(METHODS)}")
    config_block = METHODS[policy]["config"]
    block = b.get(config_block, {}) if config_block else {}
    return {**block, "seed": b["scheduler_seed"]}


def study_methods(b: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The policies of the reliability study and their hyper-parameters: ``reliability.methods``, or the benchmark's
    methods less the oracle plus the guaranteed variant of each threshold policy among them."""
    names = b["reliability"]["methods"] or [m for m in b["methods"] if m != "oracle"] + [
        f"{m}_guard" for m in b["methods"] if m in GUARDED and f"{m}_guard" not in b["methods"]
    ]
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


def all_targets(runs: Sequence[str], seeded: Mapping[str, Sequence[str]]) -> list[str]:
    """The files of ``snakemake all``: every benchmark's curve and tables (the aggregate for one with several seeds:
    its runs' come with it), every run's examples, and the reliability study of every benchmark with one seed.
    ``runs``: every run (:func:`eenet.pipeline.runs.expand_seed_runs`' first value), ``seeded``: benchmark -> its runs."""
    of_seeds = {r for rs in seeded.values() for r in rs}
    single = [b for b in runs if b not in of_seeds]
    tops = single + list(seeded)
    return (
        [f"results/{b}/{name}" for b in tops for name in ("curve.pdf", "tables.html")]
        + [f"results/{b}/examples.pdf" for b in runs]
        + [f"results/{b}/reliability.pdf" for b in single]
    )
