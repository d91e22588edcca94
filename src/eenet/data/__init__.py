"""Datasets: fetching with checksums, seeded validation splits, and batches of model inputs.

Modules, each importing only those before it: :mod:`.spec` (:class:`DatasetSpec`, the :class:`Split`
interface), :mod:`.images`, :mod:`.folders` and :mod:`.text` (the formats), :mod:`.datasets` (the built-in datasets,
:func:`prepare_dataset`, :func:`open_split`). Which datasets exist and their config keys: :mod:`eenet.catalog`.
"""

from eenet.data.datasets import (
    AG_NEWS,
    CIFAR10,
    CIFAR100,
    DATASETS,
    FASHION_MNIST,
    IMAGENET,
    ROTTEN_TOMATOES,
    SST2,
    dataset_spec,
    fetch_dataset,
    load_images,
    open_split,
    prepare_dataset,
    raw_paths,
)
from eenet.data.download import ChecksumError, DownloadError
from eenet.data.folders import ImageFolderSplit, decode_rgb
from eenet.data.images import CIFAR_MEMBERS, ImageSplit, augment_batch, load_cifar, normalize, read_idx
from eenet.data.spec import DatasetSpec, Split, iterate_batches, split_indices
from eenet.data.text import TextSplit, fetch_hf, fetch_table, open_text, read_text_csv

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
    "fetch_hf",
    "fetch_table",
    "prepare_dataset",
    "dataset_spec",
    "decode_rgb",
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
