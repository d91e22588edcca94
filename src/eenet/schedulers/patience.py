"""PABEE's patience rule: leave once the prediction has not changed for ``t`` consecutive exits.

The patience count of a sample at exit ``k`` is the number of exits before ``k`` in a row whose argmax equals
exit ``k``'s (``c_0 = 0``; ``c_k = c_{k-1} + 1`` when ``argmax_k = argmax_{k-1}``, else 0). PABEE leaves at the
first exit with ``c_k >= t``. An integer ``t`` reaches only ``K`` costs, so to meet a budget between two of them
a sample whose count has just reached ``t`` leaves only if it is also confident (max probability ``>= λ``);
with a count of ``t + 1`` it leaves regardless. ``t`` and ``λ`` are chosen on validation: the largest realised
cost within the budget. ``λ = 0`` is PABEE with patience ``t``; ``λ > 1``, PABEE with patience ``t + 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from eenet.schedulers.base import ExitScheduler, InfeasibleBudgetError, assign_by_thresholds, realised_cost, register_method
from eenet.schedulers.scores import maxpred

__all__ = ["PatienceScheduler", "patience_counts"]


def patience_counts(probs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """``c [k, N]`` of probabilities ``[k, N, C]``: how many exits in a row before each one predicted the same class."""
    preds = torch.stack([p.argmax(dim=-1) for p in probs])
    counts = torch.zeros(preds.shape, dtype=torch.long, device=preds.device)
    for k in range(1, preds.shape[0]):
        counts[k] = torch.where(preds[k] == preds[k - 1], counts[k - 1] + 1, torch.zeros_like(counts[k]))
    return counts


@register_method
class PatienceScheduler(ExitScheduler):
    """PABEE (patience-based early exit), with a confidence threshold to meet any budget between two patiences.

    Fitted: ``patience_`` (``t``) and ``confidence_`` (``λ``).
    """

    method = "patience"

    def __init__(self) -> None:
        pass

    def _passes(self, probs: torch.Tensor | Sequence[torch.Tensor], t: int, lam: float) -> torch.Tensor:
        """``bool [k, N]``: whether each sample's count and confidence let it leave at each exit."""
        counts = patience_counts(probs)
        conf = torch.stack([maxpred(p.float()) for p in probs])
        return (counts >= t + 1) | ((counts >= t) & (conf >= lam))

    def _exits(self, probs: torch.Tensor, t: int, lam: float) -> torch.Tensor:
        return assign_by_thresholds(self._passes(probs, t, lam).float(), torch.full((probs.shape[0],), 0.5))

    def _fit(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> None:
        k_exits = probs.shape[0]
        lo_lam, hi_lam = -1.0, 2.0  # every sample at count t leaves / none does
        # the largest patience whose cheapest variant meets the budget (patience K-1 at λ > 1 is the full network)
        for t in range(k_exits - 1, -1, -1):
            if realised_cost(self._exits(probs, t, lo_lam), costs) <= self.budget_:
                break
        else:
            lowest = realised_cost(self._exits(probs, 0, lo_lam), costs)
            raise InfeasibleBudgetError(
                f"budget {self.budget_:.6g} is below the lowest cost patience can reach on validation ({lowest:.6g})"
            )
        if realised_cost(self._exits(probs, t, hi_lam), costs) <= self.budget_:
            lam = hi_lam
        else:  # bisection on λ: the cost grows with λ (fewer samples leave at count t)
            for _ in range(40):
                mid = 0.5 * (lo_lam + hi_lam)
                if realised_cost(self._exits(probs, t, mid), costs) <= self.budget_:
                    lo_lam = mid
                else:
                    hi_lam = mid
            lam = lo_lam
        self.patience_, self.confidence_ = int(t), float(lam)

    def assign(self, probs: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self._check_probs(probs)
        return self._exits(probs, self.patience_, self.confidence_)

    def leaves(self, k: int, probs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        p = probs[k]
        if self._check_step(k, probs):
            return torch.ones(p.shape[0], dtype=torch.bool, device=p.device)
        return self._passes(probs, self.patience_, self.confidence_)[k]

    def leaves_one(self, k: int, probs: Sequence[torch.Tensor]) -> bool:
        """:meth:`leaves` for one sample (``k+1`` tensors ``[1, C]``): the argmaxes read back from exit ``k`` while they
        agree, at most ``t + 1`` of them, and the confidence only at a count of exactly ``t``. The generic path
        recomputed every exit's argmax and the counts of all of them at every exit: ~0.1 ms an exit at batch 1 on a
        2-core Xeon, as much as a residual block of a small network."""
        if self._check_step(k, probs):
            return True
        t, a = self.patience_, int(probs[k].argmax())
        count = 0
        while count <= t and k - count > 0 and int(probs[k - count - 1].argmax()) == a:
            count += 1
        if count >= t + 1:
            return True
        return count >= t and bool((maxpred(probs[k].float()) >= self.confidence_)[0])  # the same float32 comparison

    def _state(self) -> dict[str, Any]:
        return {"patience": self.patience_, "confidence": self.confidence_}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.patience_, self.confidence_ = int(state["patience"]), float(state["confidence"])
