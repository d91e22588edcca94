"""Fetching a dataset: its files downloaded or copied, verified, extracted and indexed under ``data/<name>/``.

What the ``download_dataset`` rule runs (:func:`prepare_dataset`), and the only code that downloads or writes a
dataset's files; the rules that read a dataset import the readers (:mod:`.datasets`, :mod:`.images`, :mod:`.folders`,
:mod:`.text`) and none of this, so editing a downloader re-runs no job but the download. Here: the dispatch by kind,
the IDX files of Fashion-MNIST and the CIFAR binary archives (every file checked, by the sha256 of its content or the
archive's md5, and written atomically: nothing partial is left behind); image folders: :mod:`.fetch_folders`; texts:
:mod:`.fetch_text`; the checked downloads and the safe extraction they use: :mod:`.download`.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import replace
from pathlib import Path

from eenet.data.datasets import dataset_spec
from eenet.data.download import ChecksumError, DownloadError, download, safe_extract
from eenet.data.fetch_folders import index_imagefolder
from eenet.data.fetch_text import fetch_hf, fetch_table
from eenet.data.images import CIFAR_MEMBERS, _cifar_record
from eenet.data.spec import DatasetSpec
from eenet.io import atomic_path, file_digest, file_sha256

__all__ = [
    "ChecksumError",
    "DownloadError",
    "prepare_dataset",
    "fetch_dataset",
    "fetch_idx",
    "fetch_cifar",
    "index_imagefolder",
    "fetch_table",
    "fetch_hf",
]

log = logging.getLogger(__name__)


def prepare_dataset(spec: DatasetSpec, root: str | os.PathLike[str]) -> tuple[list[Path], DatasetSpec]:
    """Put the verified files of ``spec`` under ``root``; return their paths and the spec completed with what the
    files tell (classes, number of classes, image size and normalisation where the config leaves them out).

    Sources: ``mirror`` (a local directory, or the URL of one, holding the original files, for clusters whose
    compute nodes have no internet), else each built-in dataset's own (torchvision's servers, the authors' site,
    the packaged file, the Hugging Face hub); ``path`` / ``url`` / ``train`` / ``hub`` for the user's own.

    Raises:
        ChecksumError: a file with the wrong content, or a truncated or corrupt archive.
        DownloadError: the connection was refused or lost, or the server sent less than it announced.
        FileNotFoundError: a missing directory or file (the message names the config key to set).
        ValueError: labels outside the classes, a missing column, mixed image sizes.
    In every failure no partial file is left under ``root``, so the next run retries from scratch.
    """
    Path(root).mkdir(parents=True, exist_ok=True)
    if spec.kind == "cifar":
        return fetch_cifar(spec, Path(root), spec.mirror), spec
    if spec.kind == "imagefolder":
        return index_imagefolder(spec, Path(root))
    if spec.kind == "table":
        return fetch_table(spec, Path(root))
    if spec.kind == "huggingface":
        return fetch_hf(spec, Path(root))
    return fetch_idx(spec, Path(root), spec.mirror), spec


def fetch_dataset(name: str | DatasetSpec, root: str | os.PathLike[str], mirror: str | None = None) -> list[Path]:
    """:func:`prepare_dataset` of a built-in dataset (or a spec), its source set to ``mirror`` when given; the paths."""
    spec = dataset_spec(name)
    if mirror is not None:
        spec = replace(spec, mirror=mirror)
    return prepare_dataset(spec, root)[0]


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


def fetch_idx(spec: DatasetSpec, root: Path, mirror: str | None) -> list[Path]:
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
    return [dest_dir / fname for fname in spec.files]


def fetch_cifar(spec: DatasetSpec, root: Path, mirror: str | None) -> list[Path]:
    """The CIFAR binary archive from ``mirror`` (directory or URL) or the authors' site, md5-checked, then
    only its known members extracted (:func:`eenet.data.download.safe_extract`; sizes checked) into ``root/<raw_subdir>``."""
    ((archive_name, md5),) = spec.files.items()
    train, test, _ = CIFAR_MEMBERS[spec.name]
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

        def whole_records(info) -> None:
            if info.size % record:
                raise ChecksumError(f"{archive}: {info.name} is not a file of {record}-byte records")

        members = [f"{spec.raw_subdir}/{m}" for m in train + test]
        try:
            extracted = safe_extract(archive, Path(tmp) / "extracted", members=members, check=whole_records)
        except (KeyError, tarfile.TarError, EOFError, zlib.error) as exc:
            raise ChecksumError(f"{archive}: not the expected CIFAR archive ({exc})") from exc
        out = []
        for member, path in zip(members, extracted, strict=True):
            dest = root / member
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)  # same file system (tmp is under root): atomic
            out.append(dest)
    return out
