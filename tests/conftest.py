"""Shared fixtures: small probability tensors with the structure of a real multi-exit network."""

from __future__ import annotations

import shutil
from pathlib import Path

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


# ---------------------------------------------------------------------------------------------------
# one tiny pipeline run shared by every test that needs finished artifacts


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A copy of the workflow in which the tiny config's pipeline has run to curve.pdf, once per session.

    Tests never change it: they take a copy (:func:`clone_run`).
    """
    from test_workflow import TARGET, copy_workflow, snakemake, tiny_config

    if not Path("/usr/share/datasets/fashion-mnist").is_dir():
        pytest.skip("the packaged Fashion-MNIST (dataset-fashion-mnist) is not installed")
    wd = copy_workflow(tmp_path_factory.mktemp("tiny-run"), tiny_config())
    snakemake(wd, TARGET)
    return wd


def clone_run(run: Path, dest: Path) -> Path:
    """A copy of a finished run (workflow, data, results, logs, Snakemake's records; timestamps kept), in which
    Snakemake finds nothing to do."""
    shutil.copytree(run, dest, symlinks=True, dirs_exist_ok=True)
    return dest
