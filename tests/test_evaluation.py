"""The test evaluation of a fitted policy (eenet.analysis.evaluation), on constructed outputs whose answer is known."""

from __future__ import annotations

import pytest
import torch

from eenet.analysis.evaluation import evaluate_policy
from eenet.schedulers import make_scheduler

COSTS, FLOPS = [1.0, 2.0, 4.0], [10, 20, 40]


def _outputs(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """probs [3, n, 2]: exit 0 right on the confident half, exit 2 always right."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    conf = torch.rand(n, generator=g)
    probs = torch.empty(3, n, 2)
    for k in range(3):
        right = torch.ones(n, dtype=torch.bool) if k == 2 else conf > 0.5
        p_right = 0.55 + 0.4 * conf if k < 2 else torch.full((n,), 0.99)
        p_label = torch.where(right, p_right, 1 - p_right)
        probs[k, torch.arange(n), labels] = p_label
        probs[k, torch.arange(n), 1 - labels] = 1 - p_label
    return probs, labels


def _fitted(method: str, budget_ms: float, probs, labels) -> dict:
    sched = make_scheduler(method).fit(probs, labels, COSTS, budget_ms)
    return {**sched.to_json(), "budget_value": budget_ms / COSTS[-1], "budget_unit": "fraction", "budget_ms": budget_ms,
            "logits_model_sha256": "abc"}  # fmt: skip


def test_a_fitted_policy_is_scored_on_the_test_outputs():
    probs, labels = _outputs()
    test_probs, test_labels = _outputs(seed=1)
    fitted = _fitted("maxpred", 2.5, probs, labels)
    row = evaluate_policy(fitted, {"probs": test_probs, "labels": test_labels}, {"model_sha256": "abc"}, COSTS, FLOPS,
                          bench="b", method="maxpred", device="cpu", tolerance=0.05)  # fmt: skip
    from eenet.schedulers import scheduler_from_json

    exits = scheduler_from_json(fitted).assign(test_probs)
    hist = torch.bincount(exits, minlength=3)
    assert row["exit_histogram"] == hist.tolist() and sum(row["exit_histogram"]) == 400
    assert row["test_cost_ms"] == pytest.approx(float((hist.double() * torch.tensor(COSTS, dtype=torch.float64)).sum() / 400))
    assert row["test_cost_flops"] == pytest.approx(10 * row["test_cost_ms"])  # flops are 10x the ms here
    right = test_probs[exits, torch.arange(400)].argmax(1) == test_labels
    assert row["test_accuracy"] == pytest.approx(right.double().mean().item())
    assert row["cost_ratio"] == pytest.approx(row["test_cost_ms"] / 2.5)
    assert row["within_tolerance"] == (abs(row["cost_ratio"] - 1) <= 0.05)
    assert list(row)[:6] == ["bench", "method", "budget_value", "budget_unit", "budget_ms", "device"]


def test_a_cost_off_the_budget_is_noted_and_a_saturated_oracle_says_so():
    probs, labels = _outputs()
    row = evaluate_policy(_fitted("maxpred", 2.5, probs, labels), {"probs": probs, "labels": labels}, {"model_sha256": "abc"},
                          COSTS, FLOPS, bench="b", method="maxpred", device="cpu", tolerance=-1.0)  # fmt: skip
    assert row["within_tolerance"] is False  # no cost is within a negative tolerance
    assert row["note"] == f"realised cost is {100 * (row['cost_ratio'] - 1):+.1f}% off the budget"
    oracle = evaluate_policy(_fitted("oracle", 3.9, probs, labels), {"probs": probs, "labels": labels}, {"model_sha256": "abc"},
                             COSTS, FLOPS, bench="b", method="oracle", device="cpu", tolerance=0.05)  # fmt: skip
    assert oracle["cost_ratio"] < 0.95 and oracle["note"].startswith("oracle saturated")  # half the samples are right at exit 0
    assert oracle["test_accuracy"] == 1.0


def test_an_infeasible_fit_is_a_row_that_says_why_and_a_cache_of_another_model_is_refused():
    probs, labels = _outputs()
    infeasible = {"infeasible": True, "reason": "budget below the first exit", "budget_value": 0.1, "budget_unit": "fraction",
                  "budget_ms": 0.4, "logits_model_sha256": "abc"}  # fmt: skip
    row = evaluate_policy(infeasible, {"probs": probs, "labels": labels}, {"model_sha256": "abc"}, COSTS, FLOPS,
                          bench="b", method="maxpred", device="cpu", tolerance=0.05)  # fmt: skip
    assert row == {"bench": "b", "method": "maxpred", "budget_value": 0.1, "budget_unit": "fraction", "budget_ms": 0.4,
                   "device": "cpu", "infeasible": True, "note": "budget below the first exit"}  # fmt: skip
    with pytest.raises(ValueError, match="test.safetensors comes from another model than the one p.json was fitted on"):
        evaluate_policy(infeasible, {"probs": probs, "labels": labels}, {"model_sha256": "other"}, COSTS, FLOPS, bench="b",
                        method="maxpred", device="cpu", tolerance=0.05, source="test.safetensors", fitted_source="p.json")  # fmt: skip
