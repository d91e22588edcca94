"""Shared fixtures (the helpers they use are in helpers.py): probabilities with the structure of a real multi-exit
network, a tiny dataset in Fashion-MNIST's files, and one tiny pipeline run shared by every test that needs finished
artifacts."""

from __future__ import annotations

import os

import pytest
import torch
from helpers import FMNIST, TARGET, copy_workflow, idx_mirror, make_probs, snakemake, tiny_config

# `make test` runs two pytest workers (pytest-xdist) on two cores: each keeps torch, and the Snakemake jobs it starts, to
# one thread unless a job sets its own (the rules' threads). With torch's default of a thread per core, the workers'
# OpenMP threads oversubscribe the cores: two workers were then slower than one (benchmarks/RESULTS.md).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def val_data() -> tuple[torch.Tensor, torch.Tensor]:
    return make_probs(seed=1)


@pytest.fixture(scope="session")
def test_data() -> tuple[torch.Tensor, torch.Tensor]:
    return make_probs(seed=2)


@pytest.fixture
def tiny_dataset(tmp_path, monkeypatch):
    """A 12-image dataset in Fashion-MNIST's real file format and layout, registered as 'tiny': (mirror, arrays)."""
    from eenet import data
    from eenet.data import DatasetSpec

    mirror = tmp_path / "mirror"
    arrays, files = idx_mirror(mirror)
    spec = DatasetSpec(
        "tiny", kind="idx", torchvision_class="FashionMNIST", raw_subdir="Tiny/raw", files=files, num_classes=10, in_channels=1,
        image_size=28, mean=(0.5,), std=(0.5,),
    )  # fmt: skip
    monkeypatch.setitem(data.DATASETS, "tiny", spec)
    return mirror, arrays


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A copy of the workflow in which the tiny config's pipeline has run to curve.pdf, once per session.

    Tests never change it: they take a copy (:func:`helpers.clone_run`).
    """
    if not FMNIST.is_dir():
        pytest.skip("the packaged Fashion-MNIST (dataset-fashion-mnist) is not installed")
    wd = copy_workflow(tmp_path_factory.mktemp("tiny-run"), tiny_config())
    snakemake(wd, TARGET)
    return wd


# Tests that run the workflow (Snakemake, DVC, SLURM, a whole pipeline) are marked `workflow`:
# `pytest -m "not workflow"` runs the unit tests alone. A test is one when it uses the tiny run, or when its module
# runs the workflow in every test.
WORKFLOW_MODULES = {
    "test_workflow", "test_dvc", "test_slurm", "test_seeds", "test_own_benchmark", "test_report", "test_benchmarks",
    "test_readme",
}  # fmt: skip


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tiny_run" in item.fixturenames or item.module.__name__.rsplit(".", 1)[-1] in WORKFLOW_MODULES:
            item.add_marker(pytest.mark.workflow)
