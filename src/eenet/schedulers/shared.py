"""One confidence threshold shared by every exit: the protocol of SDN, ZTW and PABEE's baselines (``maxpred_shared``).

A sample leaves at the first exit whose max class probability reaches ``t``, one ``t`` for every exit but the last
(where every remaining sample leaves). Raising ``t`` can only move a sample to a later exit, so with cumulative costs
the realised validation cost does not decrease as ``t`` grows: ``t`` is the *largest* threshold whose realised
validation cost is within the budget (the largest cost that meets it, as the other policies here choose). Only the
scores of exits ``0..K-2`` seen on validation change the assignment, so the search is a bisection over them, exact:
every sample whose score equals ``t`` leaves. ``t = +inf`` (everything at the last exit) when the last exit's cost
is within the budget; at the smallest score every sample leaves at exit 0, so any budget >= that exit's cost is met.

MaxPred (:class:`~eenet.schedulers.threshold.MaxPredScheduler`) with every threshold equal to ``t`` is this policy:
it is one, with ``thresholds_ = [t] * (K-1) + [-inf]`` (so the runtime and the export treat it as MaxPred).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from eenet.schedulers.base import InfeasibleBudgetError, assign_by_thresholds, realised_cost, register_method
from eenet.schedulers.threshold import GeometricScheduler

__all__ = ["SharedThresholdScheduler", "shared_threshold"]


def _thresholds(t: float, k_exits: int) -> torch.Tensor:
    return torch.tensor([t] * (k_exits - 1) + [-math.inf], dtype=torch.float32)


def shared_threshold(scores: torch.Tensor, costs: torch.Tensor, budget: float) -> float:
    """The largest ``t`` whose assignment (first exit with ``scores[k] >= t``) costs at most ``budget`` on average.

    ``scores [K, N]`` (float32), ``costs [K]`` cumulative. Returns a score of exits ``0..K-2`` (a float32 value,
    exactly), or ``+inf`` when the last exit's cost is within the budget.

    Raises:
        InfeasibleBudgetError: the budget is below exit 0's cost (every sample leaving there).
    """
    k_exits = scores.shape[0]
    if k_exits == 1 or float(costs[-1]) <= budget:
        return math.inf
    candidates = torch.unique(scores[:-1].flatten())  # ascending

    def cost(i: int) -> float:
        return realised_cost(assign_by_thresholds(scores, _thresholds(float(candidates[i]), k_exits)), costs)

    if cost(0) > budget:
        raise InfeasibleBudgetError(
            f"budget {budget:.6g} is below the lowest cost one shared threshold reaches on validation ({cost(0):.6g})"
        )
    lo, hi = 0, candidates.numel()  # cost(lo) <= budget; hi: infeasible (numel stands for +inf, the last exit's cost)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if cost(mid) <= budget:
            lo = mid
        else:
            hi = mid
    return float(candidates[lo])


@register_method
class SharedThresholdScheduler(GeometricScheduler):
    """Max class probability, one threshold ``t`` for every exit (SDN / ZTW / PABEE's baseline protocol).

    Fitted: ``threshold_`` (``t``), ``thresholds_`` (``[t, ..., t, -inf]``, ``[K]``) and ``exit_distribution_`` (the
    share of validation samples at each exit).
    """

    method = "maxpred_shared"
    score = "maxpred"

    @property
    def exit_distribution_(self) -> list[float]:
        return self.q_

    def _fit(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> None:
        scores = self.scores(probs)
        self.threshold_ = shared_threshold(scores, costs, self.budget_)
        self.thresholds_ = _thresholds(self.threshold_, self.num_exits_).tolist()
        exits = assign_by_thresholds(scores, torch.tensor(self.thresholds_))
        self.q_ = (torch.bincount(exits, minlength=self.num_exits_).double() / exits.numel()).tolist()

    def _state(self) -> dict[str, Any]:
        return {"score": self.score, "threshold": self.threshold_, "thresholds": self.thresholds_, "exit_distribution": self.q_}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.threshold_ = float(state["threshold"])
        self.thresholds_ = [float(t) for t in state["thresholds"]]
        self.q_ = [float(q) for q in state["exit_distribution"]]
