"""Exit distributions chosen on validation: search the share of samples leaving at each exit directly.

The geometric family (one parameter ``ρ``) and EENet's learned ``π̄`` moved along a line are one-dimensional
paths through the simplex of exit distributions ``q [K]``; neither need pass through the best one. Here ``q``
itself is searched: starting from the geometric solution, mass is moved between exits in shrinking
steps, and a move is kept when it raises validation accuracy with the realised validation cost within the
budget (the thresholds of a ``q`` are those of :func:`thresholds_for_distribution`: exit ``k`` takes the most
confident ``q_k`` share of the samples still running). The result is never worse on validation than the start.

Over-fitting validation: with ``holdout > 0`` the search runs on a seeded part of validation and its result is
kept only if it is at least as accurate as the start on the held-out rest; the final thresholds come from the
whole validation set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from eenet.schedulers.base import assign_by_thresholds, realised_cost, search_budget, thresholds_for_distribution
from eenet.schedulers.threshold import GeometricScheduler, per_score

__all__ = [
    "search_distribution", "evaluate_distribution", "DistributionSearchScheduler", "SEARCHED", "MaxPredOptScheduler",
    "EntropyOptScheduler",
]  # fmt: skip

STEPS = (0.2, 0.1, 0.05, 0.02, 0.01, 0.005)


def evaluate_distribution(
    scores: torch.Tensor, correct: torch.Tensor, costs: torch.Tensor, q: torch.Tensor
) -> tuple[float, float, torch.Tensor]:
    """``(accuracy, realised cost, thresholds [K])`` of distribution ``q [K]`` on ``scores [K, N]``, ``correct bool [K, N]``."""
    th = thresholds_for_distribution(scores, q)
    exits = assign_by_thresholds(scores, th)
    return float(correct.gather(0, exits.view(1, -1)).double().mean()), realised_cost(exits, costs), th


def _moves(costs: torch.Tensor) -> list[torch.Tensor]:
    """Directions ``Δ [K]`` (summing to 0) to try from a distribution: mass from exit ``i`` to exit ``j``, and the
    same with a third exit ``l`` taking or giving what keeps the expected cost unchanged (at a binding budget,
    the only moves that can stay within it)."""
    k_exits = costs.numel()
    c = costs.double()
    out = []
    for i in range(k_exits):
        for j in range(k_exits):
            if i == j:
                continue
            d = torch.zeros(k_exits, dtype=torch.float64)
            d[i], d[j] = -1.0, 1.0
            out.append(d)
            for m in range(k_exits):
                if m in (i, j) or float(c[m] - c[j]) == 0.0:
                    continue
                a = float((c[m] - c[i]) / (c[m] - c[j]))  # -c_i + a c_j + (1 - a) c_m = 0
                d = torch.zeros(k_exits, dtype=torch.float64)
                d[i], d[j], d[m] = -1.0, a, 1.0 - a
                out.append(d)
    return out


def search_distribution(
    scores: torch.Tensor, correct: torch.Tensor, costs: torch.Tensor, budget: float, q0: torch.Tensor, steps: Sequence[float] = STEPS
) -> torch.Tensor:
    """The exit distribution ``q [K]`` found by moves of mass (:func:`_moves`) from ``q0``, in shrinking steps.

    ``q0`` must meet the budget on these samples; a move is kept only when accuracy rises strictly and the
    realised cost stays within the budget.
    """
    best = q0.double().clone()
    best_acc, best_cost, _ = evaluate_distribution(scores, correct, costs, best)
    if best_cost > budget:
        raise ValueError(f"the starting distribution costs {best_cost:.6g} on these samples, above the budget {budget:.6g}")
    moves = _moves(costs)
    for step in steps:
        improved = True
        while improved:
            improved = False
            for move in moves:
                q = best + step * move
                if bool((q < -1e-12).any()):
                    continue
                q = q.clamp_min(0.0)
                acc, cost, _ = evaluate_distribution(scores, correct, costs, q / q.sum())
                if cost <= budget and acc > best_acc + 1e-12:
                    best, best_acc, improved = q / q.sum(), acc, True
    return best


def choose_distribution(
    scores: torch.Tensor, correct: torch.Tensor, costs: torch.Tensor, budget: float, q0: torch.Tensor, holdout: float, seed: int
) -> tuple[torch.Tensor, dict[str, Any]]:
    """:func:`search_distribution` with the hold-out guard; returns ``q`` and a report of the choice.

    A start above the budget (its shares, read from another policy's exits, need not reproduce them exactly
    when scores tie) is first moved towards the cheapest exit until it meets the budget.
    """
    n = scores.shape[1]
    if not _meets(scores, costs, budget, q0):
        cheapest = torch.zeros_like(q0)
        cheapest[int(costs.argmin())] = 1.0
        s, _, _ = search_budget(scores, lambda t: t * q0 + (1 - t) * cheapest, costs, budget, 0.0, 1.0)
        q0 = s * q0 + (1 - s) * cheapest
    report: dict[str, Any] = {"start": q0.tolist()}
    if holdout > 0:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
        n_out = max(1, min(n - 1, round(holdout * n)))
        fit_idx, out_idx = perm[n_out:], perm[:n_out]
        q = (
            search_distribution(scores[:, fit_idx], correct[:, fit_idx], costs, budget, q0)
            if _meets(scores[:, fit_idx], costs, budget, q0)
            else q0
        )
        acc_q, _, _ = evaluate_distribution(scores[:, out_idx], correct[:, out_idx], costs, q)
        acc_0, _, _ = evaluate_distribution(scores[:, out_idx], correct[:, out_idx], costs, q0)
        report.update({"searched": q.tolist(), "heldout_accuracy": acc_q, "heldout_accuracy_start": acc_0})
        if acc_q < acc_0:
            q = q0
    else:
        q = search_distribution(scores, correct, costs, budget, q0)
    # on the whole validation set: within the budget and no worse than the start, or the start
    acc_q, cost_q, _ = evaluate_distribution(scores, correct, costs, q)
    acc_0, _, _ = evaluate_distribution(scores, correct, costs, q0)
    if cost_q > budget or acc_q < acc_0:
        q = q0
    report["chosen"] = q.tolist()
    return q, report


def _meets(scores: torch.Tensor, costs: torch.Tensor, budget: float, q: torch.Tensor) -> bool:
    return realised_cost(assign_by_thresholds(scores, thresholds_for_distribution(scores, q)), costs) <= budget


class DistributionSearchScheduler(GeometricScheduler):
    """A confidence score + an exit distribution searched on validation, starting from the geometric one; registered
    once per score (``<score>_opt``) by :func:`~eenet.schedulers.threshold.per_score`.

    Fitted: ``thresholds_``, ``exit_distribution_`` (``[K]``), ``search_`` (the start, the searched and chosen
    distributions, held-out accuracies), and the geometric start's ``log_rho_``.
    """

    method = "distribution_search"

    def __init__(self, holdout: float = 0.5, seed: int = 0) -> None:
        self.holdout = holdout
        self.seed = seed

    def _fit(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> None:
        super()._fit(probs, labels, costs)
        scores = self.scores(probs)
        correct = probs.argmax(dim=2) == labels.view(1, -1)
        q0 = torch.softmax(torch.arange(self.num_exits_, dtype=torch.float64) * self.log_rho_, dim=0)  # the geometric start
        q, self.search_ = choose_distribution(scores, correct, costs, self.budget_, q0, float(self.holdout), int(self.seed))
        self.q_ = q.tolist()
        self.thresholds_ = thresholds_for_distribution(scores, q).tolist()

    @property
    def exit_distribution_(self) -> list[float]:
        return list(self.q_)

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "holdout": self.holdout, "seed": self.seed, "search": self.search_}

    def _load_state(self, state: dict[str, Any]) -> None:
        super()._load_state(state)
        self.q_ = list(state["exit_distribution"])
        self.search_ = dict(state.get("search", {}))


SEARCHED = per_score(
    DistributionSearchScheduler, "{}_opt", "{}OptScheduler", "{title}: {doc} + the exit distribution searched on validation."
)
"""Score -> its policy with a searched exit distribution: ``maxpred_opt``, ``entropy_opt``."""
MaxPredOptScheduler, EntropyOptScheduler = SEARCHED["maxpred"], SEARCHED["entropy"]
