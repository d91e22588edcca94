"""Confidence score + geometric exit distribution: MSDNet's ``maxpred`` and BranchyNet's ``entropy``.

A geometric distribution ``q_k ∝ ρ^k`` is turned into thresholds (:func:`thresholds_for_distribution`);
``ρ`` is searched (bisection on ``log ρ``) so that the realised validation cost is the largest that does
not exceed the budget. A sample leaves at the first exit whose score reaches its threshold.

Every threshold policy family here and in :mod:`~eenet.schedulers.calibrated`, :mod:`~eenet.schedulers.search` and
:mod:`~eenet.schedulers.guarantee` is one class whose ``score`` names the confidence score; :func:`per_score`
registers one subclass of it per score of :data:`eenet.schedulers.scores.SCORE_INFO` (``maxpred``, ``entropy``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import torch
import torch.nn.functional as F

from eenet.schedulers.base import ExitScheduler, assign_by_thresholds, register_method, search_budget
from eenet.schedulers.scores import SCORE_INFO, SCORES

__all__ = ["GeometricScheduler", "per_score", "GEOMETRIC", "MaxPredScheduler", "EntropyScheduler"]


class GeometricScheduler(ExitScheduler):
    """A confidence score + a geometric exit distribution; registered once per score by :func:`per_score`.

    ``score``: a key of :data:`eenet.schedulers.scores.SCORES`, fixed by each registered subclass (not a constructor
    argument: a method name says its score). Fitted: ``log_rho_`` and ``thresholds_`` (``[K]``).
    """

    method = "geometric"
    score: str = "maxpred"

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


G = TypeVar("G", bound=GeometricScheduler)


def per_score(family: type[G], method: str, name: str, doc: str) -> dict[str, type[G]]:
    """Register one subclass of ``family`` per score of :data:`~eenet.schedulers.scores.SCORE_INFO`, with ``score``
    set: its method ``method.format(score)`` (``"{}_ts"`` -> ``maxpred_ts``), its class name ``name.format(title)``
    (``"{}TSScheduler"`` -> ``MaxPredTSScheduler``: also the policy's ``family``, which the runtime times once), its
    docstring ``doc.format(title=..., doc=...)`` (the score's). Returns score -> class; the constructor is
    ``family``'s (the score is not one of its arguments, so the JSON records hold no more than before)."""
    out: dict[str, type[G]] = {}
    for score, info in SCORE_INFO.items():
        cls_name = name.format(info.title)
        attrs = {"method": method.format(score), "score": score, "__doc__": doc.format(title=info.title, doc=info.doc)}
        cls = type(cls_name, (family,), {**attrs, "__module__": family.__module__, "__qualname__": cls_name})
        out[score] = register_method(cls)
    return out


GEOMETRIC = per_score(GeometricScheduler, "{}", "{}Scheduler", "{title}: {doc} + the geometric exit distribution.")
"""Score -> its geometric policy: ``maxpred`` (MSDNet), ``entropy`` (BranchyNet)."""
MaxPredScheduler, EntropyScheduler = GEOMETRIC["maxpred"], GEOMETRIC["entropy"]
