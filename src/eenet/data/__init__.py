"""Datasets: seeded validation splits and batches of model inputs, read from the files the ``download_dataset`` rule
fetched.

Modules, each importing only those before it: :mod:`.spec` (:class:`DatasetSpec`, the :class:`Split`
interface), :mod:`.images`, :mod:`.folders` and :mod:`.text` (the formats), :mod:`.datasets` (the built-in datasets,
:func:`open_split`). Which datasets exist and their config keys: :mod:`eenet.catalog`.

Fetching (downloads with checksums, extraction, indexing: :func:`eenet.data.fetch.prepare_dataset`) lives apart, in
:mod:`.fetch`, :mod:`.fetch_folders`, :mod:`.fetch_text` and :mod:`.download`, and this package does not import it: the
rules that only read a dataset do not list the downloaders among their code inputs.
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
    load_images,
    open_split,
    raw_paths,
)
from eenet.data.folders import ImageFolderSplit, decode_rgb
from eenet.data.images import CIFAR_MEMBERS, ImageSplit, augment_batch, load_cifar, normalize, read_idx
from eenet.data.spec import DatasetSpec, Split, iterate_batches, split_indices
from eenet.data.text import TextSplit, open_text, read_text_csv

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
    "DatasetSpec",
    "ImageFolderSplit",
    "ImageSplit",
    "Split",
    "TextSplit",
    "augment_batch",
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
