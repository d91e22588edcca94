"""Confidence scores of an exit's softmax: higher means "more sure". Inputs ``[..., C]`` -> ``[...]``."""

from __future__ import annotations

import math

import torch

__all__ = ["maxpred", "entropy_score", "SCORES"]


def maxpred(probs: torch.Tensor) -> torch.Tensor:
    """Largest class probability (MSDNet): ``[..., C]`` -> ``[...]`` in ``[1/C, 1]``."""
    return probs.max(dim=-1).values


def entropy_score(probs: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``1 - H(p) / log C`` (BranchyNet): ``[..., C]`` -> ``[...]`` in ``[0, 1]``; 1 for a one-hot ``p``."""
    c = probs.shape[-1]
    h = -(probs * torch.log(probs.clamp_min(eps))).sum(dim=-1)
    return 1.0 - h / math.log(c)


SCORES = {"maxpred": maxpred, "entropy": entropy_score}
