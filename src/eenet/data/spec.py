"""What a dataset is (:class:`DatasetSpec`) and what the model steps read from one (:class:`Split`).

A leaf module: the dataset formats (:mod:`.images`, :mod:`.text`) and the registry (:mod:`.datasets`)
build on it.
"""

from __future__ import annotations

import abc
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from eenet.catalog import DATASET_DEFAULTS as _D  # the defaults of a config's dataset keys
from eenet.inputs import Inputs

__all__ = ["DatasetSpec", "Split", "split_indices", "holdout_split", "iterate_batches"]


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its format reader (``kind``), where its files come from, and what a model reads from it.

    Built from a resolved config entry (:func:`eenet.catalog.resolve_datasets`) by :meth:`from_entry`; after the
    ``download_dataset`` rule fetched it, the manifest holds it complete (``num_classes``, ``classes``, the image
    size and normalisation, found in the files where the config does not give them): :meth:`from_manifest`.
    ``files``: for ``idx``, uncompressed raw file -> sha256 of its content; for ``cifar``, the archive -> its md5.
    """

    name: str
    kind: str = "idx"
    num_classes: int | None = _D["num_classes"]
    classes: tuple[str, ...] | None = _D["classes"]
    in_channels: int = _D["in_channels"]
    image_size: int | None = _D["image_size"]
    mean: tuple[float, ...] | None = _D["mean"]
    std: tuple[float, ...] | None = _D["std"]
    transform: str = _D["transform"]
    mirror: str | None = _D["mirror"]
    path: str | None = _D["path"]
    url: str | None = _D["url"]
    sha256: str | None = _D["sha256"]
    train_dir: str = _D["train_dir"]
    test_dir: str = _D["test_dir"]
    train: str | None = _D["train"]
    test: str | None = _D["test"]
    test_size: float = _D["test_size"]
    test_seed: int = _D["test_seed"]
    text_column: str = _D["text_column"]
    label_column: str = _D["label_column"]
    unknown_labels: str = _D["unknown_labels"]
    drop_duplicates: bool = _D["drop_duplicates"]
    hub: str | None = _D["hub"]
    config_name: str | None = _D["config_name"]
    splits: dict[str, str] = field(default_factory=lambda: dict(_D["splits"]))
    torchvision_class: str = ""
    raw_subdir: str = ""
    files: dict[str, str] = field(default_factory=dict)
    builtin: bool = False

    @classmethod
    def from_entry(cls, name: str, entry: dict[str, Any]) -> DatasetSpec:
        """From a resolved config entry (unknown keys are errors; lists become tuples)."""
        known = {f.name for f in fields(cls)}
        extra = sorted(set(entry) - known)
        if extra:
            raise ValueError(f"datasets.{name}: unknown keys {extra}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()}
        if d.get("classes") is not None:
            d["classes"] = tuple(str(c) for c in d["classes"])
            d.setdefault("num_classes", None)
            if d["num_classes"] is None:
                d["num_classes"] = len(d["classes"])
        return cls(name=name, **d)

    @classmethod
    def from_manifest(cls, manifest: str | os.PathLike[str]) -> DatasetSpec:
        """The complete spec the ``download_dataset`` rule wrote into ``data/<name>/manifest.json``."""
        with open(manifest) as fh:
            m = json.load(fh)
        if "spec" not in m:
            raise ValueError(f"{manifest} has no dataset spec: it was written by an older version; delete it and re-run")
        entry = dict(m["spec"])
        return cls.from_entry(entry.pop("name"), entry)

    def to_json(self) -> dict[str, Any]:
        """Every field, JSON-ready (what the manifest holds)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}

    def completed(self, **found: Any) -> DatasetSpec:
        """This spec with what fetching found (``classes``, ``num_classes``, ``image_size``, ``mean``, ``std``)."""
        entry = {**self.to_json(), **found}
        del entry["name"]
        if found.get("classes") is not None and found.get("num_classes") is None:
            entry["num_classes"] = None  # counted again from the classes found
        return DatasetSpec.from_entry(self.name, entry)


def split_indices(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded permutation of ``range(n)``: (train indices, the last ``val_size`` as validation)."""
    if not 0 < val_size < n:
        raise ValueError(f"val_size must be in (0, {n}), got {val_size}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[: n - val_size], perm[n - val_size :]


def holdout_split(name: str, n: int, test_size: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, test indices) of a dataset whose files have no test split: test = the last ``test_size`` (a
    number of samples, or a fraction below 1) of a permutation of ``range(n)`` seeded with ``seed``."""
    k = int(test_size) if test_size >= 1 else round(n * test_size)
    if not 0 < k < n:
        raise ValueError(f"datasets.{name}.test_size: {test_size} leaves no train or no test sample of {n}")
    return split_indices(n, k, seed)


def iterate_batches(n: int, batch_size: int, shuffle: bool, generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """Index batches over ``range(n)``, shuffled with ``generator`` when ``shuffle``."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    yield from order.split(batch_size)


class Split(abc.ABC):
    """``N`` labelled samples that make batches of model inputs on a device.

    Subclasses implement :meth:`subset` and :meth:`inputs`; ``labels`` is ``int64 [N]``.
    """

    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @abc.abstractmethod
    def subset(self, idx: torch.Tensor) -> Split:
        """The samples ``idx`` (``int64 [M]``) as a split of the same kind."""

    @abc.abstractmethod
    def inputs(self, idx: torch.Tensor, device: torch.device, augment: bool = False, generator: torch.Generator | None = None) -> Inputs:
        """Model inputs of samples ``idx`` on ``device`` (training augmentation when ``augment``)."""

    def batches(
        self,
        batch_size: int,
        device: torch.device,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        augment: bool = False,
    ) -> Iterator[tuple[Inputs, torch.Tensor]]:
        """``(inputs, labels [B])`` batches over the split, shuffled with ``generator`` when ``shuffle``."""
        yield from self.batches_of(iterate_batches(len(self), batch_size, shuffle, generator), device, augment, generator)

    def batches_of(
        self, index_batches: Iterable[torch.Tensor], device: torch.device, augment: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[tuple[Inputs, torch.Tensor]]:
        """``(inputs, labels [B])`` for each batch of sample indices (``int64 [B]``), in the given order (a rank's parts
        of the global batches in distributed training)."""
        for idx in index_batches:
            yield self.inputs(idx, device, augment, generator), self.labels[idx].to(device, non_blocking=True)
