"""The combiner once called ``ztw`` is ``ztw_ens`` (Zero Time Waste's ensembling half alone): the old name is refused
inside the package and read as the new one, with a notice, where a user or an older run wrote it (a config's
``combiners:``, ``--method``, a fitted-policy file, a results folder)."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from eenet.catalog import COMBINERS, renamed_method, split_method
from eenet.pipeline.preflight import rename_former_combiners
from eenet.schedulers import fit_policy, make_scheduler, scheduler_from_json


def test_the_old_name_is_refused_inside_the_package_naming_the_new_one():
    assert "ztw" not in COMBINERS and "ztw_ens" in COMBINERS
    assert split_method("ztw_ens+maxpred") == ("ztw_ens", "maxpred")
    with pytest.raises(ValueError, match=r"'ztw' .* renamed 'ztw_ens': write 'ztw_ens\+maxpred'"):
        split_method("ztw+maxpred")
    with pytest.raises(ValueError, match="ztw_ens"):
        make_scheduler("ztw+entropy")


def test_renamed_method_maps_the_old_name_alone_or_composed_and_leaves_the_rest():
    assert renamed_method("ztw+maxpred")[0] == "ztw_ens+maxpred"
    assert renamed_method("ztw")[0] == "ztw_ens"
    notice = renamed_method("ztw+maxpred", where="--method ztw+maxpred")[1]
    assert notice is not None and "\n" not in notice and notice.startswith("--method ztw+maxpred: ") and "'ztw_ens+maxpred'" in notice
    for same in ("ztw_ens+maxpred", "maxpred", "pa+maxpred", "ztw_ensemble"):
        assert renamed_method(same) == (same, None)


def test_a_config_naming_the_old_combiner_is_read_with_one_notice():
    shared = ["ztw", "pa"]  # a YAML anchor: one list in two benchmarks
    config = {"benchmarks": {"a": {"combiners": shared}, "b": {"combiners": shared}, "c": {"combiners": ["mie"]}, "d": {}}}
    notice = rename_former_combiners(config)
    assert [config["benchmarks"][n].get("combiners") for n in "abcd"] == [["ztw_ens", "pa"], ["ztw_ens", "pa"], ["mie"], None]
    assert notice is not None and "\n" not in notice
    assert notice.startswith("config: benchmarks a, b: combiners: the exit combiner 'ztw' is now called 'ztw_ens'")
    assert rename_former_combiners(config) is None  # nothing left to rename


def views(n: int = 300, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    onehot = torch.nn.functional.one_hot(labels, 4).float()
    return torch.stack([s * onehot + torch.randn(n, 4, generator=g) for s in (1.0, 2.0)]), labels


def test_a_policy_file_fitted_under_the_old_name_loads_and_decides_as_before():
    val, yv = views()
    test, _ = views(seed=1)
    sched = fit_policy("ztw_ens+maxpred", {}, torch.softmax(val, 2), val, yv, [1.0, 2.0], 1.5)
    old = json.loads(json.dumps(sched.to_json()))
    old["method"], old["combiner"]["name"] = "ztw+maxpred", "ztw"
    del old["combiner_losses"]  # not written before either
    again = scheduler_from_json(old)
    assert again.method == "ztw_ens+maxpred" and again.combiner_losses is None
    cache = {"probs": torch.softmax(test, 2), "logits": test}
    assert torch.equal(again.outputs(cache), sched.outputs(cache))
    assert torch.equal(again.assign(again.outputs(cache)), sched.assign(sched.outputs(cache)))


def test_predict_finds_a_policy_under_either_name_with_a_warning_for_the_old(tmp_path, caplog):
    from eenet.predict import find_policy

    (tmp_path / "model.pt").write_bytes(b"")
    old = tmp_path / "schedulers" / "ztw+maxpred" / "0.5.json"  # results fitted before the rename
    old.parent.mkdir(parents=True)
    old.write_text("{}")
    with caplog.at_level(logging.WARNING, logger="eenet.predict"):
        assert find_policy(tmp_path, "ztw+maxpred", "0.5") == old
    assert any("--method ztw+maxpred: the exit combiner 'ztw' is now called 'ztw_ens'" in r.getMessage() for r in caplog.records)
    assert find_policy(tmp_path, "ztw_ens+maxpred", 0.5) == old
    new = tmp_path / "schedulers" / "ztw_ens+maxpred" / "0.5.json"
    new.parent.mkdir()
    new.write_text("{}")
    assert find_policy(tmp_path, "ztw+maxpred", 0.5) == new == find_policy(tmp_path, "ztw_ens+maxpred", 0.5)
    with pytest.raises(FileNotFoundError, match="no fitted 'pa\\+maxpred' policy"):
        find_policy(tmp_path, "pa+maxpred", 0.5)
