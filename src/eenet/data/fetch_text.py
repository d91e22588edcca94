"""Fetching a text dataset into ``train.csv`` / ``test.csv`` (``label,text``): ``table`` -- CSV / JSON-lines / parquet
files with a text and a label column; ``huggingface`` -- a hub dataset through Hugging Face ``datasets``, from the hub
or from a local directory of the hub's files. Labels are written as class indices. Reading and tokenising: :mod:`.text`.
"""

from __future__ import annotations

import csv
import glob
import logging
import tempfile
from pathlib import Path
from typing import Any

from eenet.catalog import local_path
from eenet.data.download import ChecksumError, DownloadError
from eenet.data.spec import DatasetSpec, holdout_split
from eenet.datafiles import labelled_rows
from eenet.io import atomic_path, file_sha256

__all__ = ["fetch_table", "fetch_hf"]

log = logging.getLogger(__name__)


def _write_text_csv(path: Path, labels: list[int], texts: list[str]) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["label", "text"])
        w.writerows(zip(labels, texts, strict=True))
    return path


def _split_rows(spec: DatasetSpec, labels: list[int], texts: list[str], root: Path) -> list[Path]:
    """``train.csv`` / ``test.csv`` from one labelled table, the test part held out with a seed (:func:`holdout_split`)."""
    train, test = holdout_split(spec.name, len(texts), spec.test_size, spec.test_seed)
    log.info("%s: %d examples, %d train / %d test (seed %d)", spec.name, len(texts), len(train), len(test), spec.test_seed)
    return [
        _write_text_csv(root / f"{part}.csv", [labels[i] for i in idx], [texts[i] for i in idx])
        for part, idx in (("train", train.tolist()), ("test", test.tolist()))
    ]


def _table_file(spec: DatasetSpec, part: str) -> Path:
    location = getattr(spec, part)
    src = Path(spec.mirror) / Path(location).name if spec.mirror else local_path(location)
    if not src.is_file():
        raise FileNotFoundError(f"datasets.{spec.name}.{part}: {src} does not exist")
    if part == "train" and spec.sha256 and (got := file_sha256(src)) != spec.sha256:
        raise ChecksumError(f"{src}: sha256 is {got}, expected {spec.sha256}; file is corrupt or another version")
    return src


def _labelled(spec: DatasetSpec, df: Any, where: str, classes: list[str] | None) -> tuple[list[int], list[str], list[str]]:
    """``(label indices, texts, classes)`` of a table's rows, as the check before any job reads them."""
    return labelled_rows(spec.name, df, spec.to_json(), classes, where)


def fetch_table(spec: DatasetSpec, root: Path) -> tuple[list[Path], DatasetSpec]:
    """``train.csv`` / ``test.csv`` from a table of texts and labels (``train``, and ``test`` or a seeded split)."""
    from eenet.datafiles import read_table

    classes = list(spec.classes) if spec.classes is not None else None
    src = _table_file(spec, "train")
    labels, texts, classes = _labelled(spec, read_table(src), f"datasets.{spec.name}.train ({src})", classes)
    spec = spec.completed(classes=classes)
    if not spec.test:
        return _split_rows(spec, labels, texts, root), spec
    test = _table_file(spec, "test")
    test_labels, test_texts, _ = _labelled(spec, read_table(test), f"datasets.{spec.name}.test ({test})", classes)
    log.info("%s: %d train / %d test examples, %d classes", spec.name, len(texts), len(test_texts), len(classes))
    return [_write_text_csv(root / "train.csv", labels, texts), _write_text_csv(root / "test.csv", test_labels, test_texts)], spec


def fetch_hf(spec: DatasetSpec, root: Path) -> tuple[list[Path], DatasetSpec]:
    """``train.csv`` / ``test.csv`` of a Hugging Face dataset: from the hub (``hub``, ``config_name``), or from a local
    directory of its parquet / CSV / JSON-lines files named after the splits (``path``, or ``mirror``)."""
    import datasets

    local = spec.path or spec.mirror
    if local and "://" in local:
        raise ValueError(f"{spec.name}: the mirror of a Hugging Face dataset is a local directory, got {local}")
    classes = list(spec.classes) if spec.classes is not None else None
    tables = {}
    with tempfile.TemporaryDirectory(dir=root, prefix=".hf-cache-") as cache:
        for part, hf_split in spec.splits.items():
            if local:
                files = sorted(
                    f for ext in ("parquet", "csv", "jsonl", "json") for f in glob.glob(f"{local}/**/{hf_split}*.{ext}", recursive=True)
                )
                if not files:
                    raise FileNotFoundError(f"mirror {local} has no {hf_split}*.parquet / .csv / .jsonl file for {spec.name}")
                builder = {"jsonl": "json"}.get(Path(files[0]).suffix[1:], Path(files[0]).suffix[1:])
                log.info("%s %s from %s", spec.name, hf_split, ", ".join(files))
                ds = datasets.load_dataset(builder, data_files={hf_split: files}, split=hf_split, cache_dir=cache)
            else:
                hub = [spec.hub] + ([spec.config_name] if spec.config_name else [])
                log.info("%s %s from the Hugging Face hub (%s)", spec.name, hf_split, "/".join(hub))
                try:
                    ds = datasets.load_dataset(*hub, split=hf_split, cache_dir=cache)
                except (ConnectionError, OSError) as exc:
                    raise DownloadError(
                        f"could not load {'/'.join(hub)} from the hub ({exc}); without internet, set "
                        f"datasets.{spec.name}.mirror to a directory with its parquet or CSV files"
                    ) from exc
            names = getattr(ds.features.get(spec.label_column), "names", None)
            if classes is None and names:
                classes = list(names)
            tables[part] = _labelled(spec, ds.to_pandas(), f"{spec.name} {hf_split}", classes)
            classes = tables[part][2]
            log.info("%s %s: %d examples", spec.name, part, len(tables[part][0]))
    spec = spec.completed(classes=classes)
    if "test" not in tables:
        labels, texts, _ = tables["train"]
        return _split_rows(spec, labels, texts, root), spec
    return [_write_text_csv(root / f"{part}.csv", *tables[part][:2]) for part in ("train", "test")], spec
