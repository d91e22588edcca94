"""Atomic artifact I/O: every file is written to a temporary sibling, flushed, then renamed into place.

A killed job or a full disk therefore never leaves a half-written artifact where a finished one is expected.
Tensors are stored as safetensors, tables as CSV, fitted schedulers as JSON. No pickle anywhere.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, safe_open, save

__all__ = [
    "atomic_path",
    "write_json",
    "read_json",
    "encode_nonfinite",
    "decode_nonfinite",
    "write_csv",
    "read_csv",
    "save_tensors",
    "load_tensors",
    "file_digest",
    "file_sha256",
    "save_checkpoint",
    "load_checkpoint",
]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``, else removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


NONFINITE = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}
"""How a non-finite float is written: standard JSON has no such number, so it is the string of its JavaScript name
(e.g. the last exit's threshold of a fitted policy, ``"-Infinity"``: every remaining sample leaves there)."""


def encode_nonfinite(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by its name in :data:`NONFINITE` (dicts and lists walked)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: encode_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [encode_nonfinite(v) for v in obj]
    return obj


def decode_nonfinite(obj: Any) -> Any:
    """The inverse of :func:`encode_nonfinite`, for the fields that hold numbers (a fitted policy's): the strings of
    :data:`NONFINITE` back to floats."""
    if isinstance(obj, str):
        return NONFINITE.get(obj, obj)
    if isinstance(obj, dict):
        return {k: decode_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_nonfinite(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented, standard JSON (non-finite floats as strings: :func:`encode_nonfinite`), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(encode_nonfinite(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON of ``path``; files written before :func:`write_json` wrote standard JSON (``-Infinity`` as a bare
    number) still load."""
    return json.loads(Path(path).read_text())


def write_csv(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]], fieldnames: Sequence[str] | None = None) -> None:
    """Write a list of dicts as CSV, atomically. ``fieldnames``: the columns, in order -- each row projected onto them
    (its other keys left out, a missing one empty); default: the union of the rows' keys in order."""
    if fieldnames is None:
        fieldnames = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fieldnames), restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def save_tensors(path: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any] | None = None) -> None:
    """Save tensors as safetensors with string metadata (values are JSON-encoded), atomically."""
    meta = {k: json.dumps(v) for k, v in (metadata or {}).items()}
    data = _stable_header(save({k: v.contiguous() for k, v in tensors.items()}, metadata=meta))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def _stable_header(data: bytes) -> bytes:
    """``data`` (a safetensors file) with its header's metadata in sorted key order: safetensors writes the metadata
    map in a random order, so that the same tensors and metadata gave different bytes (and checksums) on every write.
    The header keeps its length (the offsets of the tensors are relative to its end); where the sorted header would
    not fit (it always does: same keys, same values), the bytes are returned as written."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > n:
        return data
    return data[:8] + text.ljust(n, b" ") + data[8 + n :]


def load_tensors(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a safetensors file written by :func:`save_tensors`: ``(tensors, metadata)``."""
    with safe_open(str(path), framework="pt") as fh:
        raw = fh.metadata() or {}
    return load_file(str(path)), {k: json.loads(v) for k, v in raw.items()}


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest (``sha256``, ``md5``, ...) of a file's content, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    return file_digest(path, "sha256", chunk)


def save_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any]) -> None:
    """``torch.save`` a dict of tensors and plain values, atomically (loadable with ``weights_only=True``).

    Saved through a file object: given a path, ``torch.save`` names the archive's records after the file, and
    the temporary file's random name would make the same weights give different bytes (and checksums).
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(dict(state), fh)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``: a file that carries arbitrary pickled code is refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError (or RuntimeError) for unsafe payloads
        raise ValueError(f"refusing to load checkpoint {path}: not a plain weights file ({exc})") from exc
