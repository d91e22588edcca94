"""A dataset's local files: an image folder's class folders and image sizes, a table's files, columns and labels.
The fetching of a dataset (:mod:`eenet.data.fetch`) reads sources with these functions, and the workflow's checks before any job
(:mod:`eenet.pipeline.preflight`) look at them with the same functions.

Standard library only at import (the Snakefile imports the checks); Pillow and pandas are imported when an image
folder or a table is read.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

__all__ = [
    "IMAGE_EXTENSIONS",
    "TABLE_FORMATS",
    "image_files",
    "imagefolder_layout",
    "check_image_sizes",
    "read_table",
    "label_indices",
    "known_labels",
    "labelled_rows",
    "even_sample",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
TABLE_FORMATS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet", ".bz2": "csv", ".gz": "csv"}


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name."""
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)


def imagefolder_layout(
    name: str, root: Path, d: dict[str, Any]
) -> tuple[list[str], dict[str, list[tuple[Path, int]]] | list[tuple[Path, int]]]:
    """``(classes, files)`` of an image folder: ``files`` maps ``train`` / ``test`` to ``(path, label)`` when ``root``
    has ``<train_dir>/`` (and ``<test_dir>/``), else lists every ``(path, label)`` of ``root/<class>/`` (split later).

    Raises:
        FileNotFoundError: no such directory, no class folders, a test directory without a class folder of the
            training one, or a class folder without images -- each naming the key to set.
    """
    if not root.is_dir():
        raise FileNotFoundError(
            f"datasets.{name}.path: {root} is not a directory; point it at a folder with {d['train_dir']}/<class>/ and "
            f"{d['test_dir']}/<class>/ image folders (or <class>/ folders and test_size)"
        )
    split = (root / d["train_dir"]).is_dir()
    base = root / d["train_dir"] if split else root
    classes = sorted(c.name for c in base.iterdir() if c.is_dir() and not c.name.startswith("."))
    if not classes:
        raise FileNotFoundError(f"datasets.{name}: {base} has no class folders (<class>/<image files>)")
    if d["classes"] is not None and sorted(map(str, d["classes"])) != classes:
        raise ValueError(f"datasets.{name}.classes: {d['classes']} are not the class folders of {base}: {classes}")
    if d["num_classes"] is not None and len(classes) != d["num_classes"]:
        raise FileNotFoundError(f"{base} has {len(classes)} class folders, expected {d['num_classes']}")
    parts = {"train": base, "test": root / d["test_dir"]} if split else {"all": base}
    files: dict[str, list[tuple[Path, int]]] = {}
    for part, folder in parts.items():
        if not folder.is_dir():
            raise FileNotFoundError(
                f"datasets.{name}: {folder} is missing: {d['test_dir']}/ needs the class folders of {d['train_dir']}/ "
                f"(datasets.{name}.test_dir)"
            )
        files[part] = []
        for label, cls in enumerate(classes):
            if not (folder / cls).is_dir():
                raise FileNotFoundError(
                    f"datasets.{name}: {folder / cls} is missing: {folder.name}/ needs the same class folders as {base.name}/"
                )
            images = image_files(folder / cls)
            if not images:
                raise FileNotFoundError(f"datasets.{name}: class folder {folder / cls} has no images ({', '.join(IMAGE_EXTENSIONS)})")
            files[part] += [(f, label) for f in images]
    return classes, (files if split else files["all"])


def even_sample(items: list[Any], limit: int | None) -> list[Any]:
    """``items``, or an evenly spaced sample of ``limit`` of them when there are more."""
    return items if limit is None or len(items) <= limit else [items[i * len(items) // limit] for i in range(limit)]


def check_image_sizes(name: str, files: list[Path], d: dict[str, Any], limit: int | None = None) -> int | None:
    """With ``transform: none`` every image must have one size, square, equal to ``image_size`` when given; returns it.

    ``limit``: look at an evenly spaced sample of at most this many files (the header only is read).
    """
    if d["transform"] != "none":
        return d["image_size"]
    from PIL import Image

    sample = even_sample(files, limit)
    first: tuple[Path, tuple[int, int]] | None = None
    for f in sample:
        with Image.open(f) as im:
            size = im.size
        if first is None:
            first = (f, size)
        if size != first[1] or size[0] != size[1] or (d["image_size"] and size[0] != d["image_size"]):
            what = f"{first[0]} is {first[1][0]}x{first[1][1]}, {f} is {size[0]}x{size[1]}"
            if d["image_size"] and size == first[1]:
                what = f"{f} is {size[0]}x{size[1]}, image_size is {d['image_size']}"
            raise ValueError(
                f"datasets.{name}: images of different or non-square sizes ({what}); set datasets.{name}.transform: resize "
                f"(and image_size) to resize them, or imagenet for random resized crops"
            )
    return first[1][0] if first else d["image_size"]


# --- tables -----------------------------------------------------------------------------------------------


def read_table(path: Path, columns: list[str] | None = None) -> Any:
    """A pandas DataFrame of a .csv (optionally .bz2 / .gz), .jsonl / .json (JSON lines) or .parquet file."""
    import pandas as pd

    fmt = TABLE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: a table must be .csv, .jsonl, .json (JSON lines) or .parquet")
    if fmt == "parquet":
        return pd.read_parquet(path, columns=columns)
    if fmt == "json":
        df = pd.read_json(path, lines=True)
        return df[columns] if columns else df
    return pd.read_csv(path, usecols=columns, keep_default_na=False)


def _is_integer(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, numbers.Integral) or (isinstance(v, numbers.Real) and float(v).is_integer())


def known_labels(values: list[Any], classes: list[str]) -> list[bool]:
    """Which labels are among ``classes``: integer labels index it (``0 <= v < len(classes)``), others are names."""
    if values and all(_is_integer(v) for v in values):
        return [0 <= int(v) < len(classes) for v in values]
    names = set(map(str, classes))
    return [str(v) in names for v in values]


def label_indices(name: str, values: list[Any], classes: list[str] | None, where: str) -> tuple[list[int], list[str]]:
    """Map labels to indices: integer labels index ``classes`` (default: ``0..max``); other labels are class names,
    in ``classes`` (default: their sorted distinct values). Returns ``(indices [N], classes)``.

    Raises:
        ValueError: a label outside the classes, naming the file (``where``) and the key.
    """
    ints = bool(values) and all(_is_integer(v) for v in values)
    if ints:
        idx = [int(v) for v in values]
        n = len(classes) if classes is not None else max(idx) + 1
        bad = next((v for v in idx if not 0 <= v < n), None)
        if bad is not None:
            why = f"datasets.{name}.classes has {n} classes" if classes is not None else "labels are class indices from 0"
            raise ValueError(f"{where}: label {bad} outside 0..{n - 1} ({why}; an unlabelled split? unknown_labels: drop skips such rows)")
        return idx, list(map(str, classes)) if classes is not None else [str(i) for i in range(n)]
    names = [str(v) for v in values]
    classes = list(map(str, classes)) if classes is not None else sorted(set(names))
    index = {c: i for i, c in enumerate(classes)}
    bad = next((v for v in names if v not in index), None)
    if bad is not None:
        raise ValueError(f"{where}: label {bad!r} is not one of the declared classes {classes} (datasets.{name}.classes)")
    return [index[v] for v in names], classes


def labelled_rows(name: str, df: Any, d: dict[str, Any], classes: list[str] | None, where: str) -> tuple[list[int], list[str], list[str]]:
    """``(label indices, texts, classes)`` of a table's rows (a pandas DataFrame): the columns ``d["text_column"]`` and
    ``d["label_column"]``, rows of labels outside ``classes`` dropped when ``d["unknown_labels"]`` says ``drop``, repeated
    texts when ``d["drop_duplicates"]``. ``where`` names the file in errors.

    Raises:
        ValueError: a missing column (the file's columns listed), a label outside the classes, no row left.
    """
    text_col, label_col = d["text_column"], d["label_column"]
    missing = [c for c in (text_col, label_col) if c not in df.columns]
    if missing:
        key = "text_column" if missing[0] == text_col else "label_column"
        raise ValueError(f"{where} has no column {missing[0]!r} (datasets.{name}.{key}); its columns: {', '.join(map(str, df.columns))}")
    if d["unknown_labels"] == "drop" and classes is not None:
        df = df[known_labels(df[label_col].tolist(), classes)]
        if not len(df):
            raise ValueError(f"{where}: no row has a label among the classes {classes} (datasets.{name}.classes)")
    if d["drop_duplicates"]:
        df = df.drop_duplicates(text_col)
    labels, classes = label_indices(name, df[label_col].tolist(), classes, where)
    return labels, df[text_col].astype(str).tolist(), classes
