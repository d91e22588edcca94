"""Image datasets held in memory: the IDX files of Fashion-MNIST and the CIFAR binary archives, read into images
``uint8 [N, C, H, W]`` augmented per batch on the device (:class:`ImageSplit`). Fetching them (checked and written
atomically): :mod:`.fetch`. Image folders (files decoded by DataLoader workers): :mod:`.folders`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from eenet.data.spec import DatasetSpec, Split

__all__ = [
    "CIFAR_MEMBERS",
    "read_idx",
    "load_idx",
    "load_cifar",
    "normalize",
    "augment_batch",
    "ImageSplit",
]

# members of each CIFAR archive: (train files, test files, label bytes per record; CIFAR-100's 2nd = fine label)
CIFAR_MEMBERS: dict[str, tuple[list[str], list[str], int]] = {
    "cifar10": ([f"data_batch_{i}.bin" for i in range(1, 6)], ["test_batch.bin"], 1),
    "cifar100": (["train.bin"], ["test.bin"], 2),
}


def _cifar_record(spec: DatasetSpec) -> int:
    """Bytes per record of a CIFAR binary file: the label byte(s), then 3 x 32 x 32 pixels."""
    return CIFAR_MEMBERS[spec.name][2] + 3 * 32 * 32


def load_cifar(spec: DatasetSpec, root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``uint8 [N, 3, 32, 32]`` and labels ``int64 [N]`` from the binary records."""
    train_files, test_files, label_bytes = CIFAR_MEMBERS[spec.name]
    record = _cifar_record(spec)
    chunks = []
    for name in train_files if train else test_files:
        raw = (root / spec.raw_subdir / name).read_bytes()
        if len(raw) % record:
            raise ValueError(f"{root / spec.raw_subdir / name}: {len(raw)} bytes is not a whole number of {record}-byte records")
        chunks.append(torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, record))
    rows = torch.cat(chunks)
    return rows[:, label_bytes:].reshape(-1, 3, 32, 32).clone(), rows[:, label_bytes - 1].long()


def read_idx(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an IDX file (the MNIST format) into a ``uint8`` tensor of its declared shape."""
    data = Path(path).read_bytes()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    expected = 1
    for d in dims:
        expected *= d
    if len(data) - offset != expected:
        raise ValueError(f"{path}: header says {dims} ({expected} bytes), file has {len(data) - offset}")
    return torch.frombuffer(bytearray(data[offset:]), dtype=torch.uint8).reshape(dims)


def load_idx(spec: DatasetSpec, root: str | os.PathLike[str], train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``uint8 [N, 1, H, W]`` and labels ``int64 [N]`` of the train or test split of an IDX dataset."""
    prefix = "train" if train else "t10k"
    base = Path(root) / spec.raw_subdir
    images = read_idx(base / f"{prefix}-images-idx3-ubyte").unsqueeze(1)
    labels = read_idx(base / f"{prefix}-labels-idx1-ubyte").long()
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{spec.name}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


def normalize(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """``uint8 [B, C, H, W]`` -> normalised ``float32 [B, C, H, W]``."""
    x = images.float().div_(255.0)
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def augment_batch(images: torch.Tensor, pad: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding ``pad``) and optional horizontal flip of a batch ``[B, C, H, W]``."""
    b, c, h, w = images.shape
    out = images
    if pad > 0:
        padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
        oy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(images.device)
        ox = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(images.device)
        ar_h = torch.arange(h, device=images.device)
        ar_w = torch.arange(w, device=images.device)
        iy = (oy[:, None] + ar_h).view(b, 1, h, 1).expand(b, c, h, w + 2 * pad)
        rows = torch.gather(padded, 2, iy)  # [B, C, H, W + 2 pad]
        ix = (ox[:, None] + ar_w).view(b, 1, 1, w).expand(b, c, h, w)
        out = torch.gather(rows, 3, ix)
    if flip:
        mask = (torch.rand(b, generator=generator) < 0.5).to(images.device)
        out = torch.where(mask.view(b, 1, 1, 1), out.flip(3), out)
    return out


def _model_images(x: torch.Tensor, device: torch.device, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """``uint8 [B, C, H, W]`` -> normalised ``float32`` on ``device``."""
    return normalize(x.to(device, non_blocking=True), mean, std)


class ImageSplit(Split):
    """In-memory images ``uint8 [N, C, H, W]``; random crop (``pad``) + flip when augmenting, then normalised."""

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...], pad: int = 0, flip: bool = False
    ) -> None:
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        self.images, self.labels, self.mean, self.std, self.pad, self.flip = images, labels, mean, std, pad, flip

    def subset(self, idx: torch.Tensor) -> ImageSplit:
        return ImageSplit(self.images[idx], self.labels[idx], self.mean, self.std, self.pad, self.flip)

    def inputs(
        self, idx: torch.Tensor, device: torch.device, augment: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        x = self.images[idx]
        if augment:
            x = augment_batch(x, self.pad, self.flip, generator or torch.Generator())
        return _model_images(x, device, self.mean, self.std)
