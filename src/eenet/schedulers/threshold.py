"""Confidence score + geometric exit distribution: MSDNet's ``maxpred`` and BranchyNet's ``entropy``.

A geometric distribution ``q_k ∝ ρ^k`` is turned into thresholds (:func:`thresholds_for_distribution`);
``ρ`` is searched (bisection on ``log ρ``) so that the realised validation cost is the largest that does
not exceed the budget. A sample leaves at the first exit whose score reaches its threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from eenet.schedulers.base import ExitScheduler, assign_by_thresholds, register_method, search_budget
from eenet.schedulers.scores import SCORES

__all__ = ["GeometricScheduler", "MaxPredScheduler", "EntropyScheduler"]


class GeometricScheduler(ExitScheduler):
    """A confidence score (a key of :data:`eenet.schedulers.scores.SCORES`) + a geometric exit distribution.

    Fitted: ``log_rho_`` and ``thresholds_`` (``[K]``).
    """

    method = "geometric"

    def __init__(self, score: str = "maxpred") -> None:
        if score not in SCORES:
            raise ValueError(f"unknown score {score!r}; known: {sorted(SCORES)}")
        self.score = score

    def _fit_calibration(self, probs: torch.Tensor, labels: torch.Tensor) -> None:
        """Learn what :meth:`_score_at` needs besides the probabilities (nothing here)."""

    @property
    def exit_distribution_(self) -> list[float]:
        """The fitted ``q [K]``."""
        return F.softmax(torch.arange(self.num_exits_, dtype=torch.float64) * self.log_rho_, dim=0).tolist()

    def _score_at(self, k: int, p: torch.Tensor) -> torch.Tensor:
        """The score of exit ``k``'s probabilities ``[..., C]`` -> ``[...]`` (subclasses may calibrate them first)."""
        return SCORES[self.score](p.float())

    def scores(self, probs: torch.Tensor) -> torch.Tensor:
        """``[K, N, C]`` -> ``[K, N]``: every exit's score."""
        return torch.stack([self._score_at(k, probs[k]) for k in range(probs.shape[0])])

    def _fit(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> None:
        self._fit_calibration(probs, labels)
        scores = self.scores(probs)
        ks = torch.arange(self.num_exits_, dtype=torch.float64)
        log_rho, th, _ = search_budget(scores, lambda t: F.softmax(ks * t, dim=0), costs, self.budget_, -30.0, 30.0)
        self.log_rho_ = float(log_rho)
        self.thresholds_ = th.tolist()

    def assign(self, probs: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self._check_probs(probs)
        return assign_by_thresholds(self.scores(probs), torch.tensor(self.thresholds_))

    def leaves(self, k: int, probs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        p = probs[k]
        if self._check_step(k, probs):
            return torch.ones(p.shape[0], dtype=torch.bool, device=p.device)
        return self._score_at(k, p) >= self._threshold(k, p.device)

    def leaves_one(self, k: int, probs: Sequence[torch.Tensor]) -> bool:
        if k == self.num_exits_ - 1:
            return True
        # thresholds_ hold float32 values exactly, so this compares as leaves() does in float32
        return self._score_at(k, probs[k]).item() >= self.thresholds_[k]

    def _state(self) -> dict[str, Any]:
        return {"score": self.score, "log_rho": self.log_rho_, "thresholds": self.thresholds_, "exit_distribution": self.exit_distribution_}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.score, self.log_rho_, self.thresholds_ = state["score"], state["log_rho"], [float(t) for t in state["thresholds"]]


@register_method
class MaxPredScheduler(GeometricScheduler):
    """MSDNet: max class probability + geometric exit distribution."""

    method = "maxpred"

    def __init__(self) -> None:
        super().__init__(score="maxpred")


@register_method
class EntropyScheduler(GeometricScheduler):
    """BranchyNet: ``1 - H(p)/log C`` + geometric exit distribution."""

    method = "entropy"

    def __init__(self) -> None:
        super().__init__(score="entropy")
