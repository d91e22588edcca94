"""Confidence scores of an exit's softmax: higher means "more sure". Inputs ``[..., C]`` -> ``[...]``.

:data:`SCORE_INFO` is the one list of them: every threshold policy family (:mod:`~eenet.schedulers.threshold`,
:mod:`~eenet.schedulers.calibrated`, :mod:`~eenet.schedulers.search`, :mod:`~eenet.schedulers.guarantee`) registers
one policy per entry (:func:`eenet.schedulers.threshold.per_score`), so adding a score is a function and a line here
(and its policies' labels in :data:`eenet.catalog.METHODS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["maxpred", "entropy_score", "Score", "SCORE_INFO", "SCORES"]


def maxpred(probs: torch.Tensor) -> torch.Tensor:
    """Largest class probability (MSDNet): ``[..., C]`` -> ``[...]`` in ``[1/C, 1]``."""
    return probs.max(dim=-1).values


def entropy_score(probs: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``1 - H(p) / log C`` (BranchyNet): ``[..., C]`` -> ``[...]`` in ``[0, 1]``; 1 for a one-hot ``p``."""
    c = probs.shape[-1]
    h = -(probs * torch.log(probs.clamp_min(eps))).sum(dim=-1)
    return 1.0 - h / math.log(c)


@dataclass(frozen=True)
class Score:
    """A confidence score: ``fn`` maps probabilities ``[..., C]`` to ``[...]`` (higher = more sure); ``title`` begins
    the names of its policies' classes (``MaxPred`` -> ``MaxPredTSScheduler``); ``doc`` says what it is, in their
    docstrings."""

    fn: Callable[[torch.Tensor], torch.Tensor]
    title: str
    doc: str


SCORE_INFO: dict[str, Score] = {
    "maxpred": Score(maxpred, "MaxPred", "max class probability (MSDNet)"),
    "entropy": Score(entropy_score, "Entropy", "``1 - H(p)/log C`` (BranchyNet)"),
}
"""Score name (the prefix of its policies' method names: ``maxpred`` -> ``maxpred_ts``) -> :class:`Score`."""

SCORES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {name: s.fn for name, s in SCORE_INFO.items()}
"""Score name -> its function, ``[..., C]`` -> ``[...]`` (what the policies and the export call)."""
