"""Datasets: fetching with checksums, reading into memory, seeded validation splits, batch augmentation.

Images are held in memory as ``uint8`` tensors ``[N, C, H, W]`` and augmented per batch on the fly,
which keeps the 2-core CPU path fast and the GPU path simple.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .download import ChecksumError, DownloadError, download
from .io import atomic_path, file_sha256

__all__ = [
    "DatasetSpec",
    "DATASETS",
    "fetch_dataset",
    "read_idx",
    "load_images",
    "split_indices",
    "augment_batch",
    "normalize",
    "iterate_batches",
    "ChecksumError",
    "DownloadError",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is made of: raw files (uncompressed name -> sha256 of the uncompressed bytes)."""

    name: str
    torchvision_class: str
    raw_subdir: str
    files: dict[str, str]
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


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

DATASETS: dict[str, DatasetSpec] = {FASHION_MNIST.name: FASHION_MNIST}


def raw_paths(spec: DatasetSpec, root: str | os.PathLike[str]) -> list[Path]:
    """Where the verified, uncompressed raw files of ``spec`` live under ``root``."""
    return [Path(root) / spec.raw_subdir / name for name in spec.files]


def _gunzip_verified(src: Path, dest: Path, sha256: str) -> None:
    """Decompress ``src`` (``.gz`` or plain) into ``dest`` atomically, checking the sha256 of the content."""
    opener = gzip.open if src.suffix == ".gz" else open
    with atomic_path(dest) as tmp:
        try:
            with opener(src, "rb") as fin, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout, length=1 << 20)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise ChecksumError(f"{src}: truncated or corrupt archive ({exc}); nothing was kept") from exc
        got = file_sha256(tmp)
        if got != sha256:
            raise ChecksumError(f"{src}: sha256 of content is {got}, expected {sha256}; file is corrupt or not {dest.name}")


def fetch_dataset(name: str, root: str | os.PathLike[str], mirror: str | None = None) -> list[Path]:
    """Put the verified raw files of dataset ``name`` under ``root`` and return their paths.

    ``mirror`` is a local directory, or the URL (``http://``, ``https://``, ``file://``) of one, holding
    the original ``<file>.gz`` (or ``<file>``); when it is unset or a missing directory, torchvision
    downloads from the dataset's own servers. Every file is checked against the sha256 of its
    uncompressed content.

    Raises:
        ChecksumError: a file with the wrong content, or a truncated or corrupt archive.
        DownloadError: the connection was refused or lost, or the server sent less than it announced.
        FileNotFoundError: a mirror directory without one of the files.
    In every failure no partial file is left under ``root``, so the next run retries from scratch.
    """
    spec = DATASETS[name]
    dest_dir = Path(root) / spec.raw_subdir
    if mirror and "://" in mirror:
        log.info("downloading %s from %s", name, mirror)
        Path(root).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
            for fname, sha in spec.files.items():
                archive = download(f"{mirror.rstrip('/')}/{fname}.gz", Path(tmp) / f"{fname}.gz")
                _gunzip_verified(archive, dest_dir / fname, sha)
                log.info("verified %s (sha256 %s)", fname, sha[:12])
    elif mirror and Path(mirror).is_dir():
        log.info("fetching %s from local mirror %s", name, mirror)
        for fname, sha in spec.files.items():
            candidates = [Path(mirror) / f"{fname}.gz", Path(mirror) / fname]
            src = next((c for c in candidates if c.is_file()), None)
            if src is None:
                raise FileNotFoundError(f"mirror {mirror} has neither {fname}.gz nor {fname}")
            _gunzip_verified(src, dest_dir / fname, sha)
            log.info("verified %s (sha256 %s)", fname, sha[:12])
    else:
        if mirror:
            log.warning("mirror %s does not exist; downloading with torchvision", mirror)
        import torchvision.datasets

        cls = getattr(torchvision.datasets, spec.torchvision_class)
        Path(root).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
            try:
                cls(tmp, train=True, download=True)
                cls(tmp, train=False, download=True)
            except Exception as exc:  # torchvision raises RuntimeError / URLError for every failed mirror
                raise DownloadError(
                    f"could not download {name} with torchvision ({exc}); without internet, set "
                    f"datasets.{name}.mirror to a directory or URL holding the original files"
                ) from exc
            for fname, sha in spec.files.items():
                _gunzip_verified(Path(tmp) / spec.raw_subdir / fname, dest_dir / fname, sha)
    return raw_paths(spec, root)


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


def load_images(name: str, root: str | os.PathLike[str], train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``uint8 [N, C, H, W]`` and labels ``int64 [N]`` of the train or test split."""
    spec = DATASETS[name]
    prefix = "train" if train else "t10k"
    base = Path(root) / spec.raw_subdir
    images = read_idx(base / f"{prefix}-images-idx3-ubyte").unsqueeze(1)
    labels = read_idx(base / f"{prefix}-labels-idx1-ubyte").long()
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{name}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


def split_indices(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded permutation of ``range(n)``: (train indices, the last ``val_size`` as validation)."""
    if not 0 < val_size < n:
        raise ValueError(f"val_size must be in (0, {n}), got {val_size}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[: n - val_size], perm[n - val_size :]


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


def iterate_batches(n: int, batch_size: int, shuffle: bool, generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """Index batches over ``range(n)``, shuffled with ``generator`` when ``shuffle``."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    yield from order.split(batch_size)
