"""Run a benchmark's model under one of its fitted exit policies on new inputs: images, or texts.

    pred = Predictor.from_results("results/fashion_mnist", "maxpred", 0.5)
    out = pred(["shirt.png", "boot.png"])     # file paths (texts for a text benchmark), or a batch of model inputs
    out.names, out.exits, out.confidence, out.ms

Inputs are read as the benchmark's test samples are: images decoded by Pillow (grey for one-channel datasets),
brought to the training size by the dataset's evaluation transform, normalised with its mean and standard deviation;
texts tokenised by the model's tokenizer. The samples then go through :func:`eenet.measure.runtime.adaptive_forward`, the
adaptive runtime: each leaves at the exit its policy picks and costs no compute after that.

A policy is refused when it was fitted on the logits of another model (``logits_model_sha256`` in its JSON file, the
sha256 of the ``model.pt`` whose logits it was fitted on, differs from the model's); a file without that field (from an
older run) is used with a warning.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from eenet.catalog import former_spellings, renamed_method
from eenet.data import DatasetSpec, Split, dataset_spec
from eenet.data.images import ImageSplit
from eenet.data.text import TextSplit
from eenet.inputs import Inputs, first_tensor
from eenet.io import file_sha256
from eenet.measure.costs import sync_device
from eenet.measure.runtime import adaptive_forward
from eenet.models import MultiExitNetwork, is_text_model, load_model
from eenet.records import read_fitted_policy
from eenet.schedulers import ExitScheduler, scheduler_from_json

__all__ = ["PREDICT_FIELDS", "Predictions", "Predictor", "find_policy", "load_policy", "read_inputs", "dataset_of"]

log = logging.getLogger(__name__)

PREDICT_FIELDS = ["input", "prediction", "exit", "confidence", "ms"]
"""Columns of ``eenet predict``'s CSV: the input (file, or ``file:row`` for a text), the predicted class name, the
exit it left at (0-based), its max class probability there, and milliseconds per sample of its batch."""


@dataclass
class Predictions:
    """What :class:`Predictor` returns for ``N`` samples.

    ``labels``, ``exits``: ``int64 [N]`` (class index, exit index); ``confidence``: ``float32 [N]`` (the max class
    probability at the sample's exit, of what the policy reads there: its combiner's output if it has one); ``ms``:
    ``float64 [N]`` (wall time of the sample's batch through the runtime divided by its size); ``names``: the class
    names of ``labels``.
    """

    labels: torch.Tensor
    exits: torch.Tensor
    confidence: torch.Tensor
    ms: torch.Tensor
    names: list[str]

    def rows(self, inputs: list[str]) -> list[dict[str, Any]]:
        """Rows of the CSV (:data:`PREDICT_FIELDS`), one per input."""
        if len(inputs) != len(self.names):
            raise ValueError(f"{len(inputs)} input names for {len(self.names)} predictions")
        return [
            {"input": i, "prediction": n, "exit": int(e), "confidence": float(c), "ms": float(m)}
            for i, n, e, c, m in zip(inputs, self.names, self.exits.tolist(), self.confidence.tolist(), self.ms.tolist(), strict=True)
        ]


def find_policy(results_dir: str | Path, method: str, budget: float | str) -> Path:
    """``results_dir/schedulers/<method>/<budget>.json``, the budget matched by value (``0.5`` finds ``0.50.json``).
    A former combiner name (``ztw+maxpred``) is read as the name now, with a warning; the folder may be named either
    way (results fitted before the rename: :func:`eenet.catalog.former_spellings`)."""
    results = Path(results_dir)
    if not (results / "model.pt").is_file():
        raise FileNotFoundError(f"{results}: no model.pt here; give a benchmark's results directory (results/<bench>)")
    method, notice = renamed_method(method, where=f"--method {method}")
    if notice:
        log.warning("%s", notice)
    folder = results / "schedulers"
    methods = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    method = next((m for m in former_spellings(method) if m in methods), method)
    if method not in methods:
        raise FileNotFoundError(f"no fitted {method!r} policy in {folder}; fitted: {', '.join(methods) or 'none'}")
    try:
        want = float(budget)
    except ValueError:
        raise ValueError(f"budget must be a number, got {budget!r}") from None
    files = {}
    for f in (folder / method).glob("*.json"):
        try:
            files[float(f.stem)] = f
        except ValueError:
            continue
    for value, f in files.items():
        if math.isclose(value, want, rel_tol=1e-9, abs_tol=1e-12):
            return f
    known = ", ".join(f"{v:g}" for v in sorted(files))
    raise FileNotFoundError(f"no {method} policy at budget {want:g} in {folder / method}; fitted budgets: {known or 'none'}")


def load_policy(path: str | Path, model_path: str | Path) -> tuple[ExitScheduler, dict[str, Any]]:
    """The fitted scheduler of ``path`` and its record (:func:`eenet.records.read_fitted_policy`), checked against
    the model at ``model_path``.

    Raises:
        ValueError: not a fitted-policy record, an infeasible fit, a policy that reads the labels (the oracle), or one
            fitted for another model.
    """
    fitted = read_fitted_policy(path)
    if fitted.get("infeasible"):
        raise ValueError(f"{path}: no policy was fitted at this budget ({fitted['reason']})")
    recorded = fitted.get("logits_model_sha256")
    actual = file_sha256(model_path)
    if recorded is None:
        log.warning("%s records no model checksum (an older run): cannot check that it was fitted for %s", path, model_path)
    elif recorded != actual:
        raise ValueError(
            f"{path} was fitted for another model (sha256 {recorded[:12]}), not {model_path} (sha256 {actual[:12]}): "
            "re-run the workflow, or use the policy with the model it was fitted for"
        )
    sched = scheduler_from_json(fitted)
    if sched.requires_labels:
        raise ValueError(f"the {sched.method} policy looks at the labels of the samples: it cannot predict new inputs")
    return sched, fitted


def dataset_of(results_dir: str | Path, meta: dict[str, Any]) -> DatasetSpec:
    """The spec of the dataset the model was trained on: the download's manifest, ``<workdir>/data/<dataset>/manifest.json``
    next to ``<workdir>/results/<bench>``, or the built-in spec of that name."""
    name = str(meta.get("dataset", ""))
    manifest = Path(results_dir).resolve().parent.parent / "data" / name / "manifest.json"
    if manifest.is_file():
        return DatasetSpec.from_manifest(manifest)
    try:
        return dataset_spec(name)
    except (KeyError, ValueError):
        raise FileNotFoundError(f"{manifest} is missing: the dataset {name!r} the model was trained on is unknown here") from None


def _image_files(inputs: list[str | Path]) -> list[Path]:
    from eenet.datafiles import IMAGE_EXTENSIONS, image_files

    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = image_files(item)
            if not found:
                raise FileNotFoundError(f"{item}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
            files += found
        elif item.is_file():
            if item.suffix.lower() not in IMAGE_EXTENSIONS:
                raise ValueError(f"{item}: not an image file ({', '.join(IMAGE_EXTENSIONS)}); this benchmark reads images")
            files.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    return files


def _decode(path: Path, spec: DatasetSpec) -> torch.Tensor:
    """An image file as ``uint8 [C, size, size]`` the way the dataset's test images reach the model: ``C`` = the
    dataset's channels, the evaluation transform of an image folder, or (in-memory datasets, images of another size
    than the training images) the short side resized and the centre cropped."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from eenet.data.folders import _DecodedImages

    try:
        with Image.open(path) as im:
            arr = np.array(im.convert("L" if spec.in_channels == 1 else "RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from None
    x = torch.from_numpy(arr).unsqueeze(0) if arr.ndim == 2 else torch.from_numpy(arr).permute(2, 0, 1).contiguous()
    transform = spec.transform
    if spec.kind != "imagefolder" and spec.image_size and tuple(x.shape[1:]) != (spec.image_size, spec.image_size):
        transform = "resize"
    return _DecodedImages([], spec.image_size, train=False, transform=transform).tf(x)


def read_inputs(
    inputs: list[str | Path], spec: DatasetSpec, arch: str, arch_kwargs: dict[str, Any], max_length: int
) -> tuple[list[str], Split]:
    """``(names, samples)`` of image files / folders, or of table files of texts (CSV, JSON lines, parquet: the column
    ``text_column`` of the dataset, else ``text``), as a :class:`~eenet.data.Split` (labels: -1)."""
    if is_text_model(arch):
        from eenet.datafiles import read_table
        from eenet.models import text_tokenizer

        names, texts = [], []
        for item in map(Path, inputs):
            if not item.is_file():
                raise FileNotFoundError(f"{item}: no such file (a text benchmark reads a CSV or JSON-lines file of texts)")
            table = read_table(item)
            column = spec.text_column if spec.text_column in table.columns else "text"
            if column not in table.columns:
                raise ValueError(f"{item}: no {spec.text_column!r} or 'text' column; columns: {list(table.columns)}")
            rows = [str(t) for t in table[column].tolist()]
            names += [f"{item}:{i}" for i in range(len(rows))]
            texts += rows
        if not texts:
            raise ValueError(f"no texts in {', '.join(map(str, inputs))}")
        enc = text_tokenizer(arch_kwargs, arch)(texts, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
        return names, TextSplit(enc["input_ids"].long(), enc["attention_mask"].long(), torch.full((len(texts),), -1))
    if spec.mean is None or spec.std is None:
        raise ValueError(f"dataset {spec.name}: its manifest gives no normalisation (mean, std)")
    files = _image_files(inputs)
    images = torch.stack([_decode(f, spec) for f in files])
    return [str(f) for f in files], ImageSplit(images, torch.full((len(files),), -1), spec.mean, spec.std)


class _Recorder:
    """The model as :func:`adaptive_forward` sees it, keeping the logits of every stage it runs (for the confidence)."""

    def __init__(self, model: MultiExitNetwork) -> None:
        self.model, self.num_exits, self.logits = model, model.num_exits, []

    def begin(self, x: Inputs) -> Any:
        self.logits = []
        return self.model.begin(x)

    def step(self, k: int, state: Any) -> tuple[Any, torch.Tensor]:
        state, logits = self.model.step(k, state)
        self.logits.append(logits)
        return state, logits


class Predictor:
    """A model and one fitted policy, ready to run on new inputs (see the module docstring).

    ``batch_size`` samples go through the runtime at once (1: each sample alone, the latency a single request sees).
    Given files or a split, the first batch first runs once untimed (a warm-up), then every batch is timed.
    """

    def __init__(
        self, model: MultiExitNetwork, sched: ExitScheduler, spec: DatasetSpec, meta: dict[str, Any], device: torch.device | str = "cpu",
        batch_size: int = 1,
    ) -> None:  # fmt: skip
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        if sched.num_exits_ != model.num_exits or sched.num_classes_ != model.num_classes:
            raise ValueError(
                f"the {sched.method} policy was fitted for {sched.num_exits_} exits x {sched.num_classes_} classes; "
                f"the model has {model.num_exits} x {model.num_classes}"
            )
        self.model, self.sched, self.spec, self.meta = model, sched, spec, meta
        self.device, self.batch_size = torch.device(device), batch_size
        self.classes = list(spec.classes) if spec.classes else [str(c) for c in range(model.num_classes)]

    @classmethod
    def from_results(
        cls, results_dir: str | Path, method: str, budget: float | str, device: torch.device | str = "cpu", batch_size: int = 1
    ) -> Predictor:
        """The model ``results_dir/model.pt`` under its policy ``schedulers/<method>/<budget>.json`` (checked: see
        :func:`load_policy`)."""
        policy = find_policy(results_dir, method, budget)
        model_path = Path(results_dir) / "model.pt"
        sched, _ = load_policy(policy, model_path)
        model, meta = load_model(str(model_path), device)
        return cls(model, sched, dataset_of(results_dir, meta), meta, device, batch_size)

    def read(self, inputs: list[str | Path]) -> tuple[list[str], Split]:
        """``(names, samples)`` of input files (:func:`read_inputs`)."""
        meta = self.meta
        return read_inputs(inputs, self.spec, str(meta["arch"]), dict(meta.get("arch_kwargs") or {}), int(meta.get("max_length") or 128))

    def __call__(self, x: Inputs | Split | list[str | Path]) -> Predictions:
        """Predictions for a batch of model inputs (``[B, C, H, W]`` normalised images, or a dict of ``[B, L]`` token ids
        and attention mask), a :class:`~eenet.data.Split`, or a list of input files."""
        if isinstance(x, list):
            x = self.read(x)[1]
        if isinstance(x, Split):
            return self._run_split(x)
        return self._join([self._batch(x)])

    def _run_split(self, split: Split) -> Predictions:
        batches = torch.arange(len(split)).split(self.batch_size)
        if batches:  # one untimed pass of the first batch: the first call's one-off set-up is nobody's latency
            adaptive_forward(self.model, self.sched, split.inputs(batches[0], self.device))
        parts = []
        for idx in batches:
            parts.append(self._batch(split.inputs(idx, self.device)))
        return self._join(parts)

    def _batch(self, x: Inputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run one batch through the runtime: ``(labels, exits, confidence, ms)``, on the CPU."""
        b = first_tensor(x).shape[0]
        rec = _Recorder(self.model)
        sync_device(self.device)
        start = time.perf_counter()
        labels, exits = adaptive_forward(rec, self.sched, x)  # type: ignore[arg-type]  (the model's begin/step/num_exits)
        sync_device(self.device)
        ms = (time.perf_counter() - start) * 1e3 / b
        for k, logits in enumerate(rec.logits):
            if int((exits >= k).sum()) != logits.shape[0]:  # stage k ran on the samples whose exit is k or later
                raise RuntimeError(f"the runtime ran exit {k} on {logits.shape[0]} samples, expected {int((exits >= k).sum())}")
        conf = torch.empty(b, dtype=torch.float32, device=exits.device)
        for k in range(len(rec.logits)):
            z = [rec.logits[j][exits[exits >= j] == k].float() for j in range(k + 1)]  # exits 0..k of the samples leaving at k
            probs = self.sched.exit_outputs(k, z)  # what the policy reads there: the softmax, or its combiner's output
            conf[exits == k] = probs.max(dim=1).values
        return labels.cpu(), exits.cpu(), conf.cpu(), torch.full((b,), ms, dtype=torch.float64)

    def _join(self, parts: list[tuple[torch.Tensor, ...]]) -> Predictions:
        labels, exits, conf, ms = (torch.cat(t) for t in zip(*parts, strict=True))
        return Predictions(labels, exits, conf, ms, [self.classes[i] for i in labels.tolist()])
