"""The exact upper bound at a budget, computed with the labels of the data it is applied to."""

from __future__ import annotations

import math

import torch

from eenet.schedulers.base import ExitScheduler, register_method

__all__ = ["OracleScheduler"]


@register_method
class OracleScheduler(ExitScheduler):
    """Every sample pays the cheapest exit's cost; sample ``n`` can be made correct for the extra cost of
    its cheapest correct exit; extras are taken in ascending order while the average stays within the
    budget (greedy is optimal: every sample is worth the same). No policy on the same probabilities and
    costs reaches a higher accuracy at that average cost.

    ``assign`` needs the labels (``requires_labels``): the oracle looks at the answers.
    """

    method = "oracle"
    requires_labels = True

    def _fit(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> None:
        pass  # nothing to learn: the bound is computed on the data it is applied to

    def assign(self, probs: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self._check_probs(probs, labels)
        assert labels is not None  # _check_probs refused None
        costs = torch.tensor(self.costs_, dtype=torch.float64)
        n = probs.shape[1]
        correct = probs.argmax(dim=2) == labels.view(1, -1)  # [K, N]
        cheapest = int(costs.argmin())
        masked = torch.where(correct, costs.view(-1, 1).expand_as(correct), torch.full_like(correct, math.inf, dtype=torch.float64))
        best_cost, best_exit = masked.min(dim=0)
        extra = best_cost - costs[cheapest]  # +inf where no exit is correct
        exits = torch.full((n,), cheapest, dtype=torch.long)
        allowance = self.budget_ * n - float(costs[cheapest]) * n
        order = torch.argsort(extra, stable=True)
        spent = torch.cumsum(extra[order], dim=0)
        take = order[(spent <= allowance + 1e-9) & torch.isfinite(extra[order])]
        exits[take] = best_exit[take]
        return exits
