"""Fetching an image folder (ImageNet, or any folder of class folders of images): from a directory, or a ``.tar``
archive (a path or a URL, its sha256 checked) extracted into ``data/<name>/images``; indexed into ``train.csv`` /
``test.csv`` (``path,label``), and the spec completed (classes, image size, normalisation). Reading the index and
decoding the images: :mod:`.folders`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

import torch

from eenet.data.download import ChecksumError, download, safe_extract
from eenet.data.folders import _DecodedImages
from eenet.data.spec import DatasetSpec, holdout_split
from eenet.datafiles import check_image_sizes, even_sample, image_files, imagefolder_layout
from eenet.io import file_sha256, write_csv

__all__ = ["index_imagefolder"]

log = logging.getLogger(__name__)


def _imagefolder_source(spec: DatasetSpec, root: Path, tmp: Path) -> Path:
    """The directory of class folders: ``path`` / ``mirror`` itself, or a ``.tar`` archive (``path`` or ``url``, its
    sha256 checked) extracted into ``root/images`` (a single top-level folder in it is descended into)."""
    source = spec.path or spec.mirror or spec.url
    if not source:
        raise FileNotFoundError(
            f"{spec.name}: set datasets.{spec.name}.path (or mirror) to the directory holding {spec.train_dir}/<class>/ and "
            f"{spec.test_dir}/<class>/ image folders (torchvision ImageFolder layout), got {source!r}"
        )
    if "://" not in source and Path(source).is_dir():
        return Path(source)
    if "://" in source:
        archive = download(source, tmp / Path(source).name, sha256=spec.sha256)
    else:
        archive = Path(source)
        if not archive.is_file():
            key = "path" if spec.path else "mirror"
            raise FileNotFoundError(f"datasets.{spec.name}.{key}: {source} is neither a directory nor an archive file")
        if spec.sha256 and (got := file_sha256(archive)) != spec.sha256:
            raise ChecksumError(f"{archive}: sha256 is {got}, expected {spec.sha256} (datasets.{spec.name}.sha256)")
    dest = root / "images"
    try:
        safe_extract(archive, tmp / "extracted")
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise ChecksumError(f"{archive}: not a readable tar archive ({exc}); nothing was kept") from exc
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp / "extracted", dest)
    entries = [e for e in dest.iterdir() if not e.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() and not image_files(entries[0]) else dest


def index_imagefolder(spec: DatasetSpec, root: Path) -> tuple[list[Path], DatasetSpec]:
    """Index an image folder into ``train.csv`` / ``test.csv`` (``path,label``) and complete the spec.

    Layout (torchvision's ImageFolder): ``<train_dir>/<class>/*`` and ``<test_dir>/<class>/*``, or ``<class>/*``
    with a seeded test split (``test_size``: a fraction, or a number of images; ``test_seed``). Classes are the
    folder names, sorted. With ``transform: none`` every image must have the same square size (it becomes
    ``image_size``); ``mean`` / ``std`` not given are computed on (an even sample of up to 5,000) training images.
    """
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
        folder = _imagefolder_source(spec, root, Path(tmp))
    entry = spec.to_json()
    classes, files = imagefolder_layout(spec.name, folder, entry)
    if isinstance(files, dict):
        parts = files
    else:
        train_idx, test_idx = holdout_split(spec.name, len(files), spec.test_size, spec.test_seed)
        parts = {"train": [files[i] for i in train_idx.tolist()], "test": [files[i] for i in test_idx.tolist()]}
    size = check_image_sizes(spec.name, [f for part in parts.values() for f, _ in part], entry)
    spec = spec.completed(classes=classes, image_size=size)
    if spec.mean is None or spec.std is None:
        mean, std = _channel_stats([str(f) for f, _ in parts["train"]], spec)
        spec = spec.completed(mean=spec.mean or mean, std=spec.std or std)
    out = []
    for part in ("train", "test"):
        write_csv(root / f"{part}.csv", [{"path": _indexed(f, root), "label": label} for f, label in parts[part]])
        log.info("%s: %d %s images in %d classes", spec.name, len(parts[part]), part, len(classes))
        out.append(root / f"{part}.csv")
    log.info("%s: images %dx%d (%s), mean %s, std %s", spec.name, size, size, spec.transform, _fmt(spec.mean), _fmt(spec.std))
    return out, spec


def _indexed(file: Path, root: Path) -> str:
    """How the index names an image: relative to ``root`` when it was extracted there from an archive (the tree moves
    with the data directory, and DVC tracks it), else its absolute path in the user's folder."""
    path = file.resolve()
    return str(path.relative_to(root.resolve())) if path.is_relative_to(root.resolve()) else str(path)


def _fmt(values: tuple[float, ...] | None) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in values or ()) + "]"


def _channel_stats(files: list[str], spec: DatasetSpec, limit: int = 5000) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of pixel values in [0, 1] over (an even sample of) ``files``,
    as the model sees them (after the evaluation transform)."""
    ds = _DecodedImages(even_sample(files, limit), spec.image_size, train=False, transform=spec.transform)
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    pixels = 0
    for i in range(len(ds)):
        x = ds[i].double().div_(255.0).flatten(1)  # [3, H*W]
        total += x.sum(1)
        squares += (x * x).sum(1)
        pixels += x.shape[1]
    mean = total / pixels
    std = (squares / pixels - mean * mean).clamp_min(1e-12).sqrt()
    return tuple(round(v, 6) for v in mean.tolist()), tuple(round(v, 6) for v in std.tolist())
