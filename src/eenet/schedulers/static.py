"""Every sample leaves at one exit: the reference points of the figure, not a budgeted policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from eenet.schedulers.base import ExitScheduler, register_method

__all__ = ["StaticScheduler"]


@register_method
class StaticScheduler(ExitScheduler):
    """Every sample leaves at exit ``exit_index``."""

    method = "static"

    def __init__(self, exit_index: int = 0) -> None:
        self.exit_index = exit_index

    def _fit(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> None:
        if not 0 <= self.exit_index < self.num_exits_:
            raise ValueError(f"exit_index {self.exit_index} out of range for {self.num_exits_} exits")

    def assign(self, probs: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self._check_probs(probs)
        return torch.full((probs.shape[1],), self.exit_index, dtype=torch.long)

    def leaves(self, k: int, probs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        last = self._check_step(k, probs)
        return torch.full((probs[k].shape[0],), last or k == self.exit_index, dtype=torch.bool, device=probs[k].device)

    def leaves_one(self, k: int, probs: Sequence[torch.Tensor]) -> bool:
        """At batch 1 (the runtime's timed path): the exit's confidence read to the host, as the cheapest policy does
        and as cost.csv times every exit (:func:`eenet.measure.costs.run_to_exit`), and no other tensor work, so that
        a single exit timed by the runtime is cost.csv's exit timed in the same run (the runtime's same-run check,
        :func:`eenet.measure.overhead.same_run_check`). The generic path (:meth:`leaves`: a new tensor at every exit)
        made them 5-10 % slower than cost.csv's on a 6-exit ResNet at batch 1."""
        float(probs[-1].max())
        return k == self.exit_index or k == self.num_exits_ - 1

    def _state(self) -> dict[str, Any]:
        return {"exit_index": self.exit_index}
