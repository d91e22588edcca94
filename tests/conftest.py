"""Shared fixtures (the helpers they use are in helpers.py): probabilities with the structure of a real multi-exit
network, a tiny dataset in Fashion-MNIST's files, and one tiny pipeline run shared by every test that needs finished
artifacts."""

from __future__ import annotations

import os
import shutil

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
    """A copy of the workflow in which the tiny config's pipeline has run to curve.pdf, once per test run: under
    pytest-xdist the workers share it (the first to ask makes it, in the run's temporary folder; a worker that asks
    meanwhile waits for it), instead of making one each.

    Tests never change it: they take a copy (:func:`helpers.clone_run`).
    """
    if not FMNIST.is_dir():
        pytest.skip("the packaged Fashion-MNIST (dataset-fashion-mnist) is not installed")
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's folder; each worker's basetemp is <run>/popen-gw<n>
    wd, done = base / "tiny-run", base / "tiny-run.done"
    with FileLock(str(base / "tiny-run.lock")):
        if not done.exists():
            shutil.rmtree(wd, ignore_errors=True)  # what a worker that failed half-way left
            snakemake(copy_workflow(wd, tiny_config()), TARGET)
            done.touch()
    return wd


# Tests that run the workflow (Snakemake, DVC, SLURM, a whole pipeline) are marked `workflow`:
# `pytest -m "not workflow"` runs the unit tests alone. A test is one when it uses the tiny run, when its module
# runs the workflow in every test, or when it says so itself (@pytest.mark.workflow: test_distributed.py's runs).
WORKFLOW_MODULES = {
    "test_workflow", "test_dvc", "test_slurm", "test_seeds", "test_own_benchmark", "test_report", "test_benchmarks",
    "test_readme",
}  # fmt: skip


# The slowest test files (about 15-180 s each in `make test`), run first in this order; the other files follow in
# theirs. `make test` hands a worker the next file as it is about to run out (pytest-xdist, --dist loadfile), in the
# order of the collection here; xdist's own order (most tests first) left the slow files of a few tests each, the
# SLURM pipeline last, to the end, where one worker ran them while the other had nothing left to do. The second
# file does not use the tiny run: while the first worker makes the shared run, the other works instead of waiting.
SLOW_FILES = [
    "test_slurm", "test_own_benchmark", "test_workflow", "test_benchmarks", "test_compiled", "test_compiled_runtime", "test_seeds",
    "test_predict",
    "test_dvc", "test_distributed", "test_guarantee", "test_reliability", "test_examples", "test_faults",
]  # fmt: skip


def pytest_configure(config):
    if getattr(config.option, "dist", "no") == "loadfile":
        config.option.loadscopereorder = False  # the collection's order (pytest_collection_modifyitems), not xdist's


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tiny_run" in item.fixturenames or item.module.__name__.rsplit(".", 1)[-1] in WORKFLOW_MODULES:
            item.add_marker(pytest.mark.workflow)

    rank = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(SLOW_FILES)))  # stable: a file's tests keep their order
