"""Predictions of a multi-exit network over a split, and the device a step runs on. Imports neither the training loop
nor the data-parallel launcher: the steps that only predict (caching outputs, timing) do not depend on them."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from eenet.data import Split
from eenet.models import MultiExitNetwork

__all__ = ["pick_device", "predict_outputs", "predict_probs"]


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; otherwise the named device."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


@torch.inference_mode()
def predict_outputs(
    model: MultiExitNetwork, split: Split, batch_size: int = 1000, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw logits and softmax of every exit on ``split`` (test-time inputs, no augmentation): ``float32 [K, N, C]``
    each, the softmax computed batch by batch from the float32 logits."""
    model.eval()
    logits, probs = [], []
    for x, _ in split.batches(batch_size, torch.device(device)):
        z = torch.stack([o.float() for o in model(x)])
        logits.append(z.cpu())
        probs.append(torch.stack([F.softmax(o, dim=1) for o in z]).cpu())
    return torch.cat(logits, dim=1), torch.cat(probs, dim=1)


def predict_probs(model: MultiExitNetwork, split: Split, batch_size: int = 1000, device: torch.device | str = "cpu") -> torch.Tensor:
    """Softmax of every exit on ``split``: ``float32 [K, N, C]`` (the second half of :func:`predict_outputs`)."""
    return predict_outputs(model, split, batch_size, device)[1]
