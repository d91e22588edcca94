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

    def _state(self) -> dict[str, Any]:
        return {"exit_index": self.exit_index}
