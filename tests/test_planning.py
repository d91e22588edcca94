"""The workflow's planning (eenet.pipeline.planning), on config blocks of its own: what rules/common.smk computes."""

from __future__ import annotations

import re

import pytest

from eenet.catalog import METHOD_PATTERN, split_method
from eenet.pipeline.planning import all_targets, example_policy, hyper_params, policy_methods, study_methods


def block(**over):
    b = {
        "methods": ["eenet", "maxpred", "oracle", "maxpred_guard"],
        "combiners": [],
        "eenet": {"epochs": 7},
        "guarantee": {"delta": 0.1},
        "scheduler_seed": 3,
        "reliability": {"methods": None},
        "examples": {},
        "budgets": {"values": [0.9, 0.5, 0.7]},
    }
    return {**b, **over}


def test_policies_are_the_methods_then_every_combiner_with_each():
    b = block(combiners=["ztw_ens", "pa"], methods=["maxpred", "entropy"])
    assert policy_methods(b) == ["maxpred", "entropy", "ztw_ens+maxpred", "ztw_ens+entropy", "pa+maxpred", "pa+entropy"]
    assert all(re.fullmatch(METHOD_PATTERN, m) for m in policy_methods(b))
    assert not re.fullmatch(METHOD_PATTERN, "foo+maxpred")  # an unknown combiner is no policy name
    assert [split_method(m) for m in policy_methods(b)[2:4]] == [("ztw_ens", "maxpred"), ("ztw_ens", "entropy")]


def test_hyper_params_come_from_the_methods_block_and_a_combined_policy_takes_its_methods():
    b = block()
    assert hyper_params(b, "eenet") == {"epochs": 7, "seed": 3}
    assert hyper_params(b, "mie+eenet") == {"epochs": 7, "seed": 3}
    assert hyper_params(b, "maxpred_guard") == {"delta": 0.1, "seed": 3}
    assert hyper_params(b, "ztw_ens+maxpred") == {"seed": 3}
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        hyper_params(b, "nope")


def test_the_reliability_study_adds_each_guaranteed_variant_once_and_leaves_out_the_oracle():
    assert list(study_methods(block())) == ["eenet", "maxpred", "maxpred_guard"]
    assert list(study_methods(block(methods=["entropy", "maxpred_ts"]))) == ["entropy", "maxpred_ts", "entropy_guard", "maxpred_ts_guard"]
    assert list(study_methods(block(reliability={"methods": ["maxpred"]}))) == ["maxpred"]


def test_the_reliability_study_composes_every_combiner_with_every_studied_policy_guaranteed_ones_included():
    b = block(combiners=["ztw_ens", "pa"])
    got = study_methods(b)
    assert list(got) == [
        "eenet", "maxpred", "maxpred_guard", "ztw_ens+eenet", "ztw_ens+maxpred", "ztw_ens+maxpred_guard", "pa+eenet", "pa+maxpred",
        "pa+maxpred_guard",
    ]  # fmt: skip
    # every policy the benchmark fits is studied but the oracle's (alone or combined)
    assert {m for m in policy_methods(b) if split_method(m)[1] != "oracle"} <= set(got)
    assert got["ztw_ens+maxpred_guard"] == hyper_params(b, "maxpred_guard") == {"delta": 0.1, "seed": 3}
    assert got["pa+eenet"] == hyper_params(b, "eenet")
    assert all(re.fullmatch(METHOD_PATTERN, m) for m in got)


def test_examples_default_to_eenet_at_the_middle_budget_and_refuse_what_is_not_fitted():
    assert example_policy(block()) == ("eenet", "0.7")
    assert example_policy(block(methods=["oracle", "entropy"])) == ("entropy", "0.7")
    with pytest.raises(ValueError, match="examples.method 'patience'"):
        example_policy(block(examples={"method": "patience"}))
    with pytest.raises(ValueError, match=r"examples.budget 0.6 .*\[0.5, 0.7, 0.9\]"):
        example_policy(block(examples={"budget": 0.6}))


def test_all_targets_aggregate_seeded_benchmarks_and_study_reliability_of_single_runs():
    runs = ["demo", "s/seed0", "s/seed1"]
    got = all_targets(runs, {"s": ["s/seed0", "s/seed1"]})
    assert got == [
        "results/demo/curve.pdf", "results/demo/tables.html", "results/s/curve.pdf", "results/s/tables.html",
        "results/demo/examples.pdf", "results/s/seed0/examples.pdf", "results/s/seed1/examples.pdf",
        "results/demo/reliability.pdf",
    ]  # fmt: skip
    with_compiled = all_targets(runs, {"s": ["s/seed0", "s/seed1"]}, compiled=["s/seed1"])
    assert with_compiled == [*got, "results/s/seed1/compiled.csv"]


def test_every_check_runs_on_every_benchmark_and_names_it():
    """check_all (run while the Snakefile is parsed, whatever the target): a torchvision backbone's missing exit
    module is an error naming the benchmark and the module; a right one passes."""
    from eenet.catalog import resolve_datasets
    from eenet.pipeline.preflight import check_all

    archive = {"url": "https://example.org/x.tar.gz", "sha256": "0" * 64}  # a download: nothing local to look at
    datasets = resolve_datasets({"rgb": {"kind": "imagefolder", "path": None, **archive, "classes": ["a", "b"], "in_channels": 3}})
    good = {"dataset": "rgb", "arch": "torchvision:resnet18", "arch_kwargs": {"exits": ["layer1", "layer4"]}}
    check_all({"mine": good}, datasets)
    bad = {**good, "arch_kwargs": {"exits": ["layer1", "layer4.9"]}}
    with pytest.raises(ValueError, match=r"benchmarks\.typo: .*layer4\.9"):
        check_all({"mine": good, "typo": bad}, datasets)
