"""What a dataset is (:class:`DatasetSpec`) and what the model steps read from one (:class:`Split`).

A leaf module: the dataset formats (:mod:`.images`, :mod:`.text`) and the registry (:mod:`.datasets`)
build on it.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from ..batch import Inputs

__all__ = ["DatasetSpec", "Split", "split_indices", "iterate_batches"]


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is made of and where it comes from.

    ``files``: for ``idx``, uncompressed raw file -> sha256 of its content; for ``cifar``, the archive ->
    its md5; for ``text``, a packaged source file -> sha256 (empty where Hugging Face ``datasets`` verifies).
    """

    name: str
    torchvision_class: str
    raw_subdir: str
    files: dict[str, str]
    num_classes: int
    in_channels: int = 3
    image_size: int = 32
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    kind: str = "idx"
    url: str = ""
    hf: tuple[str, ...] = ()
    hf_splits: dict[str, str] = field(default_factory=dict)
    text_column: str = "text"
    test_size: int = 0


def split_indices(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded permutation of ``range(n)``: (train indices, the last ``val_size`` as validation)."""
    if not 0 < val_size < n:
        raise ValueError(f"val_size must be in (0, {n}), got {val_size}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[: n - val_size], perm[n - val_size :]


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
        for idx in iterate_batches(len(self), batch_size, shuffle, generator):
            yield self.inputs(idx, device, augment, generator), self.labels[idx].to(device, non_blocking=True)
