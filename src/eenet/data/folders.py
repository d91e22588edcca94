"""Image folders (ImageNet, or any folder of class folders of images): read from their index and decoded on the fly.

The ``download_dataset`` rule indexes the folder into ``train.csv`` / ``test.csv`` (``path,label``) and completes the
spec (classes, image size, normalisation): :mod:`.fetch_folders`. Here: reading that index, and batches decoded by
DataLoader workers with Pillow (:class:`ImageFolderSplit`).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from eenet.data.images import _model_images, augment_batch
from eenet.data.spec import DatasetSpec, Split
from eenet.inputs import Inputs

__all__ = ["read_index", "decode_rgb", "ImageFolderSplit"]


def read_index(root: str | os.PathLike[str], part: str) -> tuple[list[str], torch.Tensor]:
    """``(image paths, labels int64 [N])`` of ``root/<part>.csv`` written by :func:`eenet.data.fetch_folders.index_imagefolder`."""
    with open(Path(root) / f"{part}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    files = [r["path"] if os.path.isabs(r["path"]) else str(Path(root) / r["path"]) for r in rows]
    return files, torch.tensor([int(r["label"]) for r in rows], dtype=torch.long)


def decode_rgb(path: str | os.PathLike[str]) -> torch.Tensor:
    """An image file as ``uint8 [3, H, W]`` (RGB), decoded by Pillow."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        return torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1).contiguous()


class _DecodedImages(torch.utils.data.Dataset):
    """Image files -> ``uint8 [3, size, size]``, by ``transform``: ``imagenet`` (train: RandomResizedCrop + flip; eval:
    resize to size/0.875 + centre crop), ``resize`` (resize the short side to size + centre crop), ``none`` (as is)."""

    def __init__(self, files: list[str], size: int | None, train: bool, transform: str = "imagenet") -> None:
        from torchvision.transforms import v2

        self.files = files
        if transform == "imagenet" and train:
            self.tf = v2.Compose([v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()])
        elif transform == "imagenet":
            self.tf = v2.Compose([v2.Resize(int(round(size / 0.875)), antialias=True), v2.CenterCrop(size)])
        elif transform == "resize":
            self.tf = v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])
        else:
            self.tf = v2.Identity()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.tf(decode_rgb(self.files[i]))


class ImageFolderSplit(Split):
    """Image files decoded on the fly by ``workers`` DataLoader processes (image folders, ImageNet).

    Training batches are augmented by the spec's transform (``imagenet``: random resized crops and flips) or, for
    ``none`` / ``resize``, by the recipe's random crop (zero padding ``pad``) and flip, as in-memory images are.
    """

    def __init__(
        self, files: list[str], labels: torch.Tensor, spec: DatasetSpec, workers: int = 0, pad: int = 0, flip: bool = False
    ) -> None:
        self.files, self.labels, self.spec, self.workers, self.pad, self.flip = files, labels, spec, workers, pad, flip

    def subset(self, idx: torch.Tensor) -> ImageFolderSplit:
        return ImageFolderSplit([self.files[i] for i in idx.tolist()], self.labels[idx], self.spec, self.workers, self.pad, self.flip)

    def _decoded(self, files: list[str], augment: bool) -> _DecodedImages:
        return _DecodedImages(files, self.spec.image_size, augment, self.spec.transform)

    def _model_inputs(self, x: torch.Tensor, device: torch.device, augment: bool, generator: torch.Generator | None) -> torch.Tensor:
        if augment and self.spec.transform != "imagenet" and (self.pad or self.flip):
            x = augment_batch(x, self.pad, self.flip, generator or torch.Generator())
        return _model_images(x, device, self.spec.mean, self.spec.std)

    def inputs(
        self, idx: torch.Tensor, device: torch.device, augment: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        ds = self._decoded([self.files[i] for i in idx.tolist()], augment)
        return self._model_inputs(torch.stack([ds[i] for i in range(len(ds))]), device, augment, generator)

    def batches_of(
        self, index_batches: Iterable[torch.Tensor], device: torch.device, augment: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[tuple[Inputs, torch.Tensor]]:
        """Decoded by ``workers`` DataLoader processes, each batch of indices in order."""
        order = [idx.tolist() for idx in index_batches]
        loader = torch.utils.data.DataLoader(
            self._decoded(self.files, augment), batch_sampler=order, num_workers=self.workers, pin_memory=device.type == "cuda"
        )
        for idx, x in zip(order, loader, strict=True):
            yield self._model_inputs(x, device, augment, generator), self.labels[idx].to(device, non_blocking=True)
