"""Datasets: fetching with checksums, seeded validation splits, and batches of model inputs.

Modules, each importing only those before it: :mod:`.spec` (:class:`DatasetSpec`, the :class:`Split`
interface), :mod:`.images` and :mod:`.text` (the formats), :mod:`.datasets` (the built-in datasets,
:func:`fetch_dataset`, :func:`open_split`).
"""

from ..download import ChecksumError, DownloadError
from .datasets import (
    AG_NEWS,
    CIFAR10,
    CIFAR100,
    DATASETS,
    FASHION_MNIST,
    IMAGENET,
    ROTTEN_TOMATOES,
    SST2,
    fetch_dataset,
    load_images,
    open_split,
    raw_paths,
)
from .images import CIFAR_MEMBERS, ImageFolderSplit, ImageSplit, augment_batch, load_cifar, normalize, read_idx
from .spec import DatasetSpec, Split, iterate_batches, split_indices
from .text import TextSplit, fetch_text, open_text, read_text_csv

__all__ = [
    "AG_NEWS",
    "CIFAR10",
    "CIFAR100",
    "CIFAR_MEMBERS",
    "DATASETS",
    "FASHION_MNIST",
    "IMAGENET",
    "ROTTEN_TOMATOES",
    "SST2",
    "ChecksumError",
    "DatasetSpec",
    "DownloadError",
    "ImageFolderSplit",
    "ImageSplit",
    "Split",
    "TextSplit",
    "augment_batch",
    "fetch_dataset",
    "fetch_text",
    "iterate_batches",
    "load_cifar",
    "load_images",
    "normalize",
    "open_split",
    "open_text",
    "raw_paths",
    "read_idx",
    "read_text_csv",
    "split_indices",
]
