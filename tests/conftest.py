"""Shared fixtures: small probability tensors with the structure of a real multi-exit network."""

from __future__ import annotations

import pytest
import torch


def make_probs(n: int = 2000, k: int = 3, c: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax outputs ``[K, N, C]`` where later exits are more accurate and confidence tracks correctness."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, c, (n,), generator=g)
    difficulty = torch.rand(n, generator=g)  # shared across exits, as in a real network
    probs = []
    for j in range(k):
        logits = torch.randn(n, c, generator=g) * 1.2
        strength = (1.0 + 1.5 * j) * (1.2 - difficulty) * 3
        logits[torch.arange(n), labels] += strength
        probs.append(torch.softmax(logits, dim=1))
    return torch.stack(probs), labels


@pytest.fixture(scope="session")
def val_data() -> tuple[torch.Tensor, torch.Tensor]:
    return make_probs(seed=1)


@pytest.fixture(scope="session")
def test_data() -> tuple[torch.Tensor, torch.Tensor]:
    return make_probs(seed=2)


COSTS = [0.3, 0.65, 1.0]
