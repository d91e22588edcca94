"""What a model takes: a batch of inputs, the one type shared by the data, model and cost modules."""

from __future__ import annotations

import torch

__all__ = ["Inputs", "first_tensor"]

Inputs = torch.Tensor | dict[str, torch.Tensor]
"""A batch: images ``[B, C, H, W]``, or a dict of ``[B, L]`` tensors (``input_ids``, ``attention_mask``)."""


def first_tensor(x: Inputs) -> torch.Tensor:
    """The image tensor, or the first tensor of a dict batch (its batch size and device are the batch's)."""
    return next(iter(x.values())) if isinstance(x, dict) else x
