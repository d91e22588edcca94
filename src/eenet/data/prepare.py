"""The samples of a benchmark as the workflow's steps see them: train / validation / test splits.

Validation = the last ``val_size`` of a seeded permutation of the training set (the rest trains);
test = the dataset's test set (optionally its first ``max_test``). Text benchmarks are tokenised with
their model's own tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from eenet.data.datasets import dataset_spec, open_split
from eenet.data.spec import DatasetSpec, Split, split_indices
from eenet.models import is_text_model, text_tokenizer

__all__ = ["open_benchmark", "open_fetched"]


def open_benchmark(
    dataset: str | DatasetSpec,
    root: str | Path,
    arch: str,
    arch_kwargs: dict[str, Any],
    split: dict[str, Any] | None,
    parts: tuple[str, ...],
    train: dict[str, Any] | None = None,
    max_length: int = 128,
    workers: int = 0,
) -> dict[str, Split]:
    """The requested ``parts`` (``train``, ``val``, ``test``) of a benchmark whose data lie in ``root``.

    ``dataset``: its spec (:meth:`DatasetSpec.from_manifest <eenet.data.DatasetSpec.from_manifest>` of the
    download's manifest, in the workflow), or the name of a built-in dataset.

    ``split`` (``val_size``, ``seed``, optional ``max_train`` / ``max_test``) is needed for ``train`` and
    ``val``; without it the test part is the whole test set. ``train`` (the recipe) supplies the
    augmentation of training batches; ``workers`` the decoding processes of image-folder datasets.
    """
    spec = dataset_spec(dataset)
    opts: dict[str, Any] = {"workers": workers, "max_length": max_length}
    if is_text_model(arch):
        opts["tokenizer"] = text_tokenizer(arch_kwargs, arch)
    if train:
        opts.update(augment_pad=train.get("augment_pad", 0), augment_flip=train.get("augment_flip", False))
    out: dict[str, Split] = {}
    if "train" in parts or "val" in parts:
        if split is None:
            raise ValueError("the train and val parts need the benchmark's split (val_size, seed)")
        full = open_split(spec, root, "train", **opts)
        train_idx, val_idx = split_indices(len(full), split["val_size"], split["seed"])
        if split.get("max_train"):
            train_idx = train_idx[: split["max_train"]]
        if "train" in parts:
            out["train"] = full.subset(train_idx)
        if "val" in parts:
            out["val"] = full.subset(val_idx)
    if "test" in parts:
        test = open_split(spec, root, "test", **opts)
        if split and split.get("max_test"):
            test = test.subset(torch.arange(min(split["max_test"], len(test))))
        out["test"] = test
    return out


def open_fetched(
    manifest: str | Path,
    model_meta: dict[str, Any],
    split: dict[str, Any] | None,
    parts: tuple[str, ...],
    max_length: int = 128,
    workers: int = 0,
) -> dict[str, Split]:
    """The ``parts`` of a fetched dataset (its ``manifest.json``, written by ``download_dataset``, lies among its files)
    as a trained model reads them: ``model_meta`` is the model file's metadata (``arch``, ``arch_kwargs``, as
    :func:`eenet.models.load_model` returns it); test-time preprocessing, no augmentation."""
    spec = DatasetSpec.from_manifest(manifest)
    arch, arch_kwargs = str(model_meta["arch"]), dict(model_meta.get("arch_kwargs") or {})
    return open_benchmark(spec, Path(manifest).parent, arch, arch_kwargs, split, parts, max_length=max_length, workers=workers)
