"""The datasets this package knows, and what the rules that read one do with it: open a split of its files.

Every dataset is a :class:`~eenet.data.spec.DatasetSpec` built from a config entry (the built-in ones:
:data:`eenet.catalog.BUILTIN_DATASETS`, updated by the config's ``datasets:`` block; or the user's own). The
``download_dataset`` rule fetches each dataset once into ``data/<name>/`` (:func:`eenet.data.fetch.prepare_dataset`,
the only code that downloads) and writes the completed spec into the manifest; training, logit caching and profiling
then open a :class:`~eenet.data.spec.Split` (:func:`open_split`):

- ``idx`` (Fashion-MNIST) and ``cifar`` (CIFAR-10/100): images held in memory, augmented on the device;
- ``imagefolder`` (ImageNet, any folder of class folders): decoded and augmented by DataLoader workers;
- ``table`` (Rotten Tomatoes, any CSV / JSON-lines / parquet of texts) and ``huggingface`` (SST-2, AG News, any hub
  dataset): ``label,text`` CSVs, tokenised into token ids + attention masks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from eenet.catalog import TEXT_KINDS, resolve_datasets
from eenet.data.folders import ImageFolderSplit, read_index
from eenet.data.images import CIFAR_MEMBERS, ImageSplit, load_cifar, load_idx
from eenet.data.spec import DatasetSpec, Split
from eenet.data.text import open_text

__all__ = [
    "FASHION_MNIST",
    "CIFAR10",
    "CIFAR100",
    "IMAGENET",
    "ROTTEN_TOMATOES",
    "SST2",
    "AG_NEWS",
    "DATASETS",
    "dataset_spec",
    "raw_paths",
    "load_images",
    "open_split",
]

DATASETS: dict[str, DatasetSpec] = {name: DatasetSpec.from_entry(name, e) for name, e in resolve_datasets({}).items()}
"""The built-in datasets with their defaults (a config's ``datasets:`` block may override their keys)."""
FASHION_MNIST, CIFAR10, CIFAR100, IMAGENET = DATASETS["fashion_mnist"], DATASETS["cifar10"], DATASETS["cifar100"], DATASETS["imagenet"]
ROTTEN_TOMATOES, SST2, AG_NEWS = DATASETS["rotten_tomatoes"], DATASETS["sst2"], DATASETS["ag_news"]


def dataset_spec(name: str | DatasetSpec) -> DatasetSpec:
    """A spec as given, or the built-in dataset of that name."""
    if isinstance(name, DatasetSpec):
        return name
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; built-in: {', '.join(sorted(DATASETS))} (others are declared under `datasets:`)"
        ) from None


def raw_paths(spec: DatasetSpec | str, root: str | os.PathLike[str]) -> list[Path]:
    """The files the ``download_dataset`` rule leaves under ``root`` for ``spec`` (DVC tracks them): the raw files of
    ``idx`` and ``cifar`` datasets, else ``train.csv`` and ``test.csv`` (texts, or an image folder's index)."""
    spec = dataset_spec(spec)
    base = Path(root) / spec.raw_subdir
    if spec.kind == "idx":
        return [base / name for name in spec.files]
    if spec.kind == "cifar":
        train, test, _ = CIFAR_MEMBERS[spec.name]
        return [base / name for name in train + test]
    index = [Path(root) / f"{part}.csv" for part in ("train", "test")]
    archive = spec.kind == "imagefolder" and (spec.url or (spec.path and not Path(spec.path).is_dir()))
    return index + [Path(root) / "images"] if archive else index  # images extracted from an archive live here


def load_images(name: str | DatasetSpec, root: str | os.PathLike[str], train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``uint8 [N, C, H, W]`` and labels ``int64 [N]`` of the train or test split of an ``idx`` / ``cifar`` dataset."""
    spec = dataset_spec(name)
    if spec.kind == "cifar":
        return load_cifar(spec, Path(root), train)
    return load_idx(spec, root, train)


def open_split(
    name: str | DatasetSpec,
    root: str | os.PathLike[str],
    part: str,
    *,
    augment_pad: int = 0,
    augment_flip: bool = False,
    tokenizer: Any = None,
    max_length: int = 128,
    workers: int = 0,
) -> Split:
    """The ``train`` or ``test`` part of a dataset (a spec, or a built-in name) as fetched under ``root``.

    Image options: ``augment_pad``, ``augment_flip`` (the training recipe's crop and flip, used when batches ask for
    augmentation), ``workers`` (decoding processes of image folders). Text options: ``tokenizer`` (a Hugging Face
    tokenizer), ``max_length``.
    """
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test', got {part!r}")
    spec = dataset_spec(name)
    if spec.kind in TEXT_KINDS:
        if tokenizer is None:
            raise ValueError(f"{spec.name} is a text dataset: open_split needs the model's tokenizer")
        return open_text(Path(root) / f"{part}.csv", tokenizer, max_length)
    if spec.kind == "imagefolder":
        files, labels = read_index(root, part)
        return ImageFolderSplit(files, labels, spec, workers, augment_pad, augment_flip)
    images, labels = load_images(spec, root, train=part == "train")
    return ImageSplit(images, labels, spec.mean, spec.std, augment_pad, augment_flip)
