"""The test evaluation of a fitted policy: its exits on the cached test outputs -> accuracy, realised cost, exit
histogram, and how far the realised cost lands from the budget."""

from __future__ import annotations

import logging
from typing import Any

import torch

from eenet.schedulers import accuracy, realised_cost, scheduler_from_json

__all__ = ["evaluate_policy"]

log = logging.getLogger(__name__)


def evaluate_policy(
    fitted: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    costs_ms: list[float],
    flops: list[int],
    *,
    bench: str,
    method: str,
    device: str | None,
    tolerance: float,
    source: str = "the test cache",
    fitted_source: str = "the policy",
) -> dict[str, Any]:
    """One row of the benchmark's evaluation (what ``evaluations/<method>/<budget>.json`` holds).

    Args:
        fitted: the fitted policy's JSON (``schedulers/<method>/<budget>.json``).
        tensors: the test cache: ``probs [K, N, C]``, ``labels [N]`` and, for a combined policy, ``logits [K, N, C]``.
        meta: the cache's metadata; its ``model_sha256`` must be the one the policy was fitted on.
        costs_ms, flops: per-exit cost ``[K]`` (cost.csv); a policy fitted with its decision work (``decision_ms``)
            is charged its own ``costs`` (cost.csv's plus those decisions, :func:`eenet.measure.overhead.effective_costs`).
        device: where the costs were measured (cost.csv's ``device``).
        tolerance: how far (fraction of the budget) the realised test cost may land from the budget unnoted.
        source, fitted_source: the cache's and the fitted policy's names in error messages.

    Raises:
        ValueError: the cache comes from another model than the one the policy was fitted on.
    """
    if meta.get("model_sha256") != fitted.get("logits_model_sha256"):
        raise ValueError(f"{source} comes from another model than the one {fitted_source} was fitted on")
    row: dict[str, Any] = {"bench": bench, "method": method, "budget_value": fitted["budget_value"], "budget_unit": fitted["budget_unit"],
                           "budget_ms": fitted["budget_ms"], "device": device}  # fmt: skip
    if fitted.get("infeasible"):
        row.update({"infeasible": True, "note": fitted["reason"]})
        return row
    sched = scheduler_from_json(fitted)
    probs, labels = sched.outputs(tensors, source), tensors["labels"]  # combined, with a combiner
    exits = sched.assign(probs, labels)  # only policies that need labels (the oracle) read them
    # a policy fitted with its decision work (fit_scheduler's decision_ms) pays its own costs: cost.csv's plus the decisions
    cost = realised_cost(exits, torch.tensor(sched.costs_ if fitted.get("decision_ms") is not None else costs_ms))
    ratio = cost / fitted["budget_ms"]
    within = abs(ratio - 1) <= tolerance
    note = ""
    if not within and method == "oracle" and ratio < 1:
        note = "oracle saturated: every sample that any exit gets right is already right; more budget buys nothing"
    elif not within:
        note = f"realised cost is {100 * (ratio - 1):+.1f}% off the budget"
    row.update({
        "infeasible": False,
        "test_accuracy": accuracy(probs, labels, exits),
        "test_cost_ms": cost,
        "test_cost_flops": realised_cost(exits, torch.tensor(flops, dtype=torch.float64)),
        "cost_ratio": ratio,
        "within_tolerance": within,
        "val_accuracy": sched.val_accuracy_,
        "val_cost_ms": sched.val_cost_,
        "exit_histogram": torch.bincount(exits, minlength=sched.num_exits_).tolist(),
        "note": note,
    })  # fmt: skip
    return row
