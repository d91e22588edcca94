"""The record formats of eenet.records: the fitted policy (one JSON file a budget) and the logits cache (safetensors
with a header), written atomically, read back with their fields checked."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch

from eenet.io import encode_nonfinite, load_tensors, save_tensors
from eenet.records import (
    FITTED_POLICY_FIELDS,
    INFEASIBLE_FIELDS,
    LOGITS_HEADER_FIELDS,
    read_fitted_policy,
    read_logits_cache,
    write_fitted_policy,
    write_logits_cache,
)
from eenet.schedulers import InfeasibleBudgetError, MaxPredScheduler, scheduler_from_json

FIELDS = {"bench": "b", "method": "maxpred", "budget_value": 0.5, "budget_unit": "fraction", "budget_ms": 1.5,
          "exit_ms": [1.0, 2.0, 3.0], "device": "cpu (x)", "logits_model_sha256": "a" * 64}  # fmt: skip


def test_a_fitted_policy_record_is_the_budget_fields_then_the_schedulers_own_in_one_order(tmp_path, val_data):
    probs, labels = val_data
    sched = MaxPredScheduler().fit(probs, labels, [1.0, 2.0, 3.0], 1.5)
    path = tmp_path / "maxpred" / "0.5.json"
    record = write_fitted_policy(path, sched, **FIELDS, decision_ms=[0.01, 0.02, 0.0])
    head = [k for k in FITTED_POLICY_FIELDS]
    assert list(record)[: len(head)] == head and list(record)[len(head) :] == list(sched.to_json())
    expected = {**{k: FIELDS[k] for k in head if k in FIELDS}, "decision_ms": [0.01, 0.02, 0.0], **sched.to_json()}
    # the bytes of eenet.io.write_json: indented standard JSON, the last exit's threshold -inf as "-Infinity"
    assert path.read_text() == json.dumps(encode_nonfinite(expected), indent=2, allow_nan=False) + "\n"
    back = read_fitted_policy(path)
    assert back["method"] == "maxpred" and back["decision_ms"] == [0.01, 0.02, 0.0]
    assert torch.equal(scheduler_from_json(back).assign(probs), sched.assign(probs))
    without = write_fitted_policy(tmp_path / "no_decision.json", sched, **FIELDS)  # no decision costs: no such field
    assert "decision_ms" not in without


def test_an_infeasible_budget_records_the_method_and_the_reason(tmp_path):
    path = tmp_path / "0.1.json"
    write_fitted_policy(path, InfeasibleBudgetError("budget 0.1 ms is below the first exit's cost"), **{**FIELDS, "budget_value": 0.1})
    assert path.read_text() == (
        '{\n  "bench": "b",\n  "budget_value": 0.1,\n  "budget_unit": "fraction",\n  "budget_ms": 1.5,\n  "device": "cpu (x)",\n'
        f'  "logits_model_sha256": "{"a" * 64}",\n  "exit_ms": [\n    1.0,\n    2.0,\n    3.0\n  ],\n  "method": "maxpred",\n'
        '  "infeasible": true,\n  "reason": "budget 0.1 ms is below the first exit\'s cost"\n}\n'
    )
    record = read_fitted_policy(path)
    assert list(record)[-3:] == list(INFEASIBLE_FIELDS) and record["infeasible"] is True


def test_a_file_that_is_no_fitted_policy_is_refused_naming_it(tmp_path):
    for name, text in [
        ("list.json", "[1, 2]"),
        ("nomethod.json", '{"budget_ms": 1.0}'),
        ("noreason.json", '{"method": "m", "infeasible": true}'),
    ]:
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=name):
            read_fitted_policy(tmp_path / name)


def _cache(k: int = 3, n: int = 5, c: int = 4) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    logits = torch.randn(k, n, c, generator=torch.Generator().manual_seed(0))
    tensors = {"probs": logits.softmax(-1), "logits": logits, "labels": torch.arange(n) % c}
    header = {"bench": "b", "split": "val", "dataset": "d", "model_sha256": "f" * 64, "num_exits": k, "num_classes": c, "device": "cpu"}
    return tensors, header


def test_a_logits_cache_reads_back_as_written(tmp_path):
    tensors, header = _cache()
    assert list(header) == list(LOGITS_HEADER_FIELDS)
    path = tmp_path / "logits" / "val.safetensors"
    write_logits_cache(path, tensors, header)
    back, meta = read_logits_cache(path, split="val")
    assert meta == header and all(torch.equal(back[k], v) for k, v in tensors.items())
    assert load_tensors(path)[1] == header  # the plain safetensors reader sees the same header
    with pytest.raises(ValueError, match=r"val\.safetensors holds the 'val' split, not 'test'"):
        read_logits_cache(path, split="test")
    assert [p.name for p in path.parent.iterdir()] == ["val.safetensors"]  # written atomically: no temporary left


def test_a_logits_cache_without_a_header_field_or_of_other_shapes_is_refused_naming_the_file(tmp_path):
    tensors, header = _cache()
    old = tmp_path / "old.safetensors"
    save_tensors(old, tensors, {k: v for k, v in header.items() if k not in ("dataset", "device")})  # not written by this module
    with pytest.raises(ValueError, match=r"old\.safetensors: the logits cache's header lacks dataset, device"):
        read_logits_cache(old)
    with pytest.raises(ValueError, match=r"new\.safetensors: the logits cache's header lacks bench"):
        write_logits_cache(tmp_path / "new.safetensors", tensors, {k: v for k, v in header.items() if k != "bench"})
    with pytest.raises(ValueError, match=r"probs of shape \(3, 5, 4\); the header and labels say \(3, 5, 7\)"):
        write_logits_cache(tmp_path / "new.safetensors", tensors, {**header, "num_classes": 7})
    with pytest.raises(ValueError, match="holds no labels"):
        write_logits_cache(tmp_path / "new.safetensors", {"probs": tensors["probs"]}, header)
    assert not (tmp_path / "new.safetensors").exists()
    no_logits = {k: v for k, v in tensors.items() if k != "logits"}  # a cache of an older run: no raw logits
    save_tensors(tmp_path / "older.safetensors", no_logits, header)
    assert "logits" not in read_logits_cache(tmp_path / "older.safetensors")[0]
    assert math.isclose(float(read_logits_cache(tmp_path / "older.safetensors")[0]["probs"].sum()), 5 * 3, rel_tol=1e-5)


def test_the_same_tensors_and_header_give_the_same_bytes(tmp_path):
    """safetensors writes its metadata map in a random order; save_tensors sorts it, so that a re-run that computes the
    same cache writes the same file (and DVC sees the same checksum). Twelve keys: a random order shows up at once."""
    tensors = {"probs": torch.rand(3, 20, 10, generator=torch.Generator().manual_seed(0)), "labels": torch.arange(20)}
    header = {f"key{i}": {"value": i, "list": [i, i + 1]} for i in range(12)}
    digests = set()
    for _ in range(6):
        save_tensors(tmp_path / "cache.safetensors", tensors, header)
        digests.add(hashlib.sha256((tmp_path / "cache.safetensors").read_bytes()).hexdigest())
    assert len(digests) == 1
    back, meta = load_tensors(tmp_path / "cache.safetensors")
    assert meta == header and all(torch.equal(back[k], tensors[k]) for k in tensors)
