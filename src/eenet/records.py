"""The pipeline's two record formats, written and read in one place: the fitted policy (one JSON file a budget,
``results/<bench>/schedulers/<method>/<budget>.json``) and the logits cache (``results/<bench>/logits/{val,test}.safetensors``).

    write_fitted_policy(path, sched_or_error, bench=..., method=..., budget_value=..., ...)   # rule fit_scheduler
    fitted = read_fitted_policy(path)          # a dict: FITTED_POLICY_FIELDS, then the scheduler's own fields
    write_logits_cache(path, {"probs": ..., "logits": ..., "labels": ...}, header)           # rule cache_logits
    tensors, header = read_logits_cache(path, split="val")   # the header's fields checked (LOGITS_HEADER_FIELDS)

Both are written atomically (:func:`eenet.io.atomic_path`): JSON by :func:`eenet.io.write_json` (indented, non-finite
floats as strings), safetensors by :func:`eenet.io.save_tensors` (each header value JSON-encoded).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from eenet.io import load_tensors, read_json, save_tensors, write_json

if TYPE_CHECKING:
    from eenet.schedulers import ExitScheduler

__all__ = [
    "FITTED_POLICY_FIELDS",
    "INFEASIBLE_FIELDS",
    "LOGITS_HEADER_FIELDS",
    "LOGITS_TENSORS",
    "fitted_policy_record",
    "write_fitted_policy",
    "read_fitted_policy",
    "write_logits_cache",
    "read_logits_cache",
]

FITTED_POLICY_FIELDS: dict[str, str] = {
    "bench": "the benchmark (the results/<bench> folder)",
    "budget_value": "the budget as the config gives it, in budget_unit",
    "budget_unit": "the unit of budget_value: 'fraction' (of the last exit's cost), 'ms', ...",
    "budget_ms": "the budget in milliseconds per sample (eenet.measure.costs.resolve_budget)",
    "device": "the device cost.csv was measured on (None when it names none)",
    "logits_model_sha256": "sha256 of the model.pt whose validation logits the policy was fitted on",
    "exit_ms": "cost.csv's cost of each exit, ms per sample [K]",
    "decision_ms": "only with profile.decision_costs: the policy's own decision work at each exit, ms [K]; its `costs` "
    "are then exit_ms[k] + the decisions at exits 0..k",
}
"""The fields every fitted-policy record starts with, in the order they are written. The fields of the fitted
scheduler follow (:meth:`eenet.schedulers.ExitScheduler.to_json`: ``format_version``, ``method``, ``num_exits``,
``num_classes``, ``costs`` [K] (ms, what it was fitted against), ``budget``, ``val_cost``, ``val_accuracy``, ``state``,
and a combined policy's ``combiner`` and ``combiner_losses`` [K], the validation accuracy (a fraction) its combiner
loses at each exit) -- or, at a budget where no policy could be fitted, :data:`INFEASIBLE_FIELDS`.
Files from older runs may lack ``logits_model_sha256``, ``exit_ms`` and ``decision_ms``; a hand-made policy file
may hold the scheduler's fields alone (what :func:`eenet.predict.load_policy` needs)."""

INFEASIBLE_FIELDS: dict[str, str] = {
    "method": "the method as configured",
    "infeasible": "true: no policy meets this budget on validation",
    "reason": "why (the InfeasibleBudgetError's message)",
}
"""The fields after :data:`FITTED_POLICY_FIELDS` in the record of a budget no policy could be fitted at."""

LOGITS_HEADER_FIELDS: dict[str, str] = {
    "bench": "the benchmark",
    "split": "'val' or 'test'",
    "dataset": "the dataset's name",
    "model_sha256": "sha256 of the model.pt the outputs come from",
    "num_exits": "K, the number of exits",
    "num_classes": "C, the number of classes",
    "device": "the device the outputs were computed on (eenet.pipeline.logs.run_metadata's name)",
}
"""The header (safetensors metadata) of a logits cache: every field is required, in this order."""

LOGITS_TENSORS: dict[str, str] = {
    "probs": "float32 [K, N, C], the softmax of each exit",
    "logits": "float32 [K, N, C], the raw logits of each exit (caches of older runs may lack them)",
    "labels": "int64 [N], the true class of each sample",
}
"""The tensors of a logits cache: ``probs`` and ``labels`` are required, ``logits`` is written by every run now."""


def fitted_policy_record(
    fitted: ExitScheduler | Exception,
    *,
    bench: str,
    method: str,
    budget_value: Any,
    budget_unit: str,
    budget_ms: float,
    exit_ms: Sequence[float],
    device: str | None,
    logits_model_sha256: str | None,
    decision_ms: Sequence[float] | None = None,
) -> dict[str, Any]:
    """The record of one budget's fit (:data:`FITTED_POLICY_FIELDS`, then the scheduler's fields or
    :data:`INFEASIBLE_FIELDS`).

    ``fitted``: the fitted scheduler, or the exception its fit raised at this budget (an infeasible budget);
    ``method``: the configured method, written for an infeasible budget (a fitted scheduler records its own);
    ``exit_ms``, ``decision_ms``: ms per sample, [K] each; ``decision_ms`` None: left out (no decision costs).
    """
    record: dict[str, Any] = {"bench": bench, "budget_value": budget_value, "budget_unit": budget_unit, "budget_ms": budget_ms,
                              "device": device, "logits_model_sha256": logits_model_sha256, "exit_ms": exit_ms}  # fmt: skip
    if decision_ms is not None:
        record["decision_ms"] = decision_ms
    if isinstance(fitted, Exception):
        return {**record, "method": method, "infeasible": True, "reason": str(fitted)}
    return {**record, **fitted.to_json()}


def write_fitted_policy(path: str | os.PathLike[str], fitted: ExitScheduler | Exception, **fields: Any) -> dict[str, Any]:
    """Write one budget's fitted-policy record (:func:`fitted_policy_record` of ``fitted`` and ``fields``, its keyword
    arguments) to ``path`` atomically; return it."""
    record = fitted_policy_record(fitted, **fields)
    write_json(path, record)
    return record


def read_fitted_policy(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The record of ``path`` as written (non-finite numbers still the strings :func:`eenet.io.write_json` wrote:
    :func:`eenet.schedulers.scheduler_from_json` decodes them).

    Raises:
        ValueError: not a JSON object with a ``method``, or an infeasible record without its ``reason``.
    """
    record = read_json(path)
    if not isinstance(record, dict) or "method" not in record:
        raise ValueError(f"{path}: not a fitted scheduler file (no 'method' field)")
    if record.get("infeasible") and "reason" not in record:
        raise ValueError(f"{path}: an infeasible fit without its 'reason' field")
    return record


def _check_header(path: str | os.PathLike[str], header: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
    """Every field of :data:`LOGITS_HEADER_FIELDS` and the required tensors there, their shapes as the header says."""
    missing = [k for k in LOGITS_HEADER_FIELDS if k not in header]
    if missing:
        raise ValueError(f"{path}: the logits cache's header lacks {', '.join(missing)} (a file of an older run? re-run cache_logits)")
    absent = [k for k in ("probs", "labels") if k not in tensors]
    if absent:
        raise ValueError(f"{path}: the logits cache holds no {' or '.join(absent)} tensor")
    labels = tensors["labels"]
    if labels.dim() != 1:
        raise ValueError(f"{path}: labels of shape {tuple(labels.shape)}, expected [N]")
    want = (int(header["num_exits"]), labels.shape[0], int(header["num_classes"]))
    for name in ("probs", "logits"):
        if name in tensors and tuple(tensors[name].shape) != want:
            raise ValueError(f"{path}: {name} of shape {tuple(tensors[name].shape)}; the header and labels say {want} (K, N, C)")


def write_logits_cache(path: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor], header: Mapping[str, Any]) -> None:
    """Write a logits cache atomically: ``tensors`` (:data:`LOGITS_TENSORS`: ``probs``, ``logits`` ``[K, N, C]``,
    ``labels`` ``[N]``) and ``header`` (:data:`LOGITS_HEADER_FIELDS`, each a JSON value; written in the order given).

    Raises:
        ValueError: a header field or a required tensor missing, or shapes that disagree with the header.
    """
    _check_header(path, header, tensors)
    save_tensors(path, tensors, header)


def read_logits_cache(path: str | os.PathLike[str], split: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(tensors, header)`` of a logits cache: tensors as :data:`LOGITS_TENSORS`, the header's fields checked
    (:data:`LOGITS_HEADER_FIELDS`). ``split``: the split the caller needs (``"val"``, ``"test"``); another is refused.

    Raises:
        ValueError: naming ``path``: a header field or a required tensor missing, shapes that disagree with the
            header, or another split than ``split``.
    """
    tensors, header = load_tensors(path)
    _check_header(path, header, tensors)
    if split is not None and header["split"] != split:
        raise ValueError(f"{path} holds the {header['split']!r} split, not {split!r}")
    return tensors, header
