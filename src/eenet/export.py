"""The model and its fitted exit policy as one file that runs with PyTorch alone: ``torch.export`` with ``torch.cond``.

The exported program takes one image, ``uint8 [1, C, S, S]`` (the training size; pixel values as decoded), normalises
it as the dataset does, and runs stage after stage; after exit ``k`` the policy's decision is a ``torch.cond`` whose
true branch returns exit ``k``'s answer and whose false branch runs the rest of the network. A sample that leaves at
exit ``k`` therefore costs no computation after it, as in :mod:`eenet.measure.runtime`. It returns ``(label int64 [1],
exit int64 [1], confidence float32 [1])``; the class names and the input shape travel in the file (``eenet.json``).

The decision after each exit is computed by the policy's own code (a combiner's step, the score functions, PABEE's
counts, EENet's utility network) on the same float32 probabilities as :meth:`ExitScheduler.leaves <eenet.schedulers.ExitScheduler.leaves>`,
which the runtime's batch-1 path reproduces; what the policy learned (thresholds, temperatures, EENet's weights)
is held in buffers of the program. Why ``torch.export`` rather than TorchScript: ``torch.jit.script`` is deprecated
in the pinned torch (a FutureWarning on every call), and an exported program is one file loaded by
``torch.export.load`` with no Python code of ours. Run it under ``torch.inference_mode()``.

:meth:`ExitProgram.exit_step` (one exit: stage, what the policy reads, its decision) is also what
:mod:`eenet.compiled` compiles, one AOTInductor program per exit (``eenet export --compiled``). An EENet fit that fell
back to MaxPred (``fallback_``) decides as MaxPred, as in the runtime.

What cannot be exported: the oracle (it reads the labels), text models (the tokenizer is not a PyTorch program) and
architectures whose stages pass structures other than one tensor between them (MSDNet's scales, transformers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from eenet.data import DatasetSpec
from eenet.io import atomic_path, file_sha256
from eenet.models import MultiExitNetwork, is_text_model
from eenet.schedulers import CombinedPolicy, EENetScheduler, ExitScheduler, GeometricScheduler, PatienceScheduler, StaticScheduler
from eenet.schedulers.calibrated import TemperatureScaledScheduler

__all__ = [
    "ExitProgram", "export_policy", "load_exported", "export_results", "results_policy", "describe", "check_exportable", "example_image",
    "EXTRA_FILE",
]  # fmt: skip

EXTRA_FILE = "eenet.json"
"""The file inside the exported archive that describes it: classes, input shape and dtype, the policy."""


class ExitProgram(nn.Module):
    """One image ``uint8 [1, C, S, S]`` -> ``(label int64 [1], exit int64 [1], confidence float32 [1])`` under ``sched``."""

    def __init__(self, model: MultiExitNetwork, sched: ExitScheduler, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        if sched.requires_labels:
            raise ValueError(f"the {sched.method} policy looks at the labels: it cannot be exported")
        decides = sched.policy if isinstance(sched, CombinedPolicy) else sched  # a combined policy: its method decides
        if isinstance(decides, EENetScheduler) and decides._maxpred() is not None:  # an EENet fit that fell back: MaxPred decides
            decides = decides._maxpred()
        if not isinstance(decides, GeometricScheduler | EENetScheduler | PatienceScheduler | StaticScheduler):
            raise ValueError(f"the {sched.method} policy cannot be exported (supported: threshold policies, patience, EENet, static, "
                             "each alone or after a combiner)")  # fmt: skip
        if sched.num_exits_ != model.num_exits:
            raise ValueError(f"{sched.method} scheduler was fitted for {sched.num_exits_} exits, the model has {model.num_exits}")
        self.model, self.policy, self.sched = model.eval(), sched, decides
        self.given: dict[str, torch.Tensor] = {}  # learned tensors given as inputs instead (ExitSegment with swappable=True)
        self.combined = isinstance(sched, CombinedPolicy)
        if isinstance(sched, CombinedPolicy):  # the combiner's fitted tensors (ZTW's biases) are buffers too
            self.combiner_tensors = list(sched.combiner.tensors())
            for name, t in sched.combiner.tensors().items():
                self.register_buffer(f"combiner_{name}", t.clone())
        sched = decides  # what it learned becomes buffers of the program
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        if hasattr(sched, "thresholds_"):
            self.register_buffer("thresholds", torch.tensor(sched.thresholds_, dtype=torch.float32))
        if isinstance(sched, TemperatureScaledScheduler):
            self.register_buffer("temperatures", torch.tensor(sched.temperatures_, dtype=torch.float32))
        if isinstance(sched, EENetScheduler):  # the utility network's weights, as EENetScheduler._utilities builds them
            for key in ("a", "b"):
                for k, v in enumerate(sched.weights_[key]):
                    self.register_buffer(f"eenet_{key}{k}", torch.tensor(v, dtype=torch.float32).unsqueeze(0))

    def learned(self) -> dict[str, torch.Tensor]:
        """What the policy learned, by buffer name (thresholds, temperatures, EENet's weights, the combiner's tensors):
        every buffer of the program but the normalisation and the model's. A compiled segment may take them as inputs
        (:class:`eenet.compiled.ExitSegment` with ``swappable=True``), so that one compiled program serves every fit of
        the same structure (e.g. every budget of a threshold policy)."""
        return {name: t for name, t in self.named_buffers(recurse=False) if name not in ("mean", "std")}

    def _buf(self, name: str) -> torch.Tensor:
        """The learned tensor ``name``: as given (:attr:`given`) or the program's buffer."""
        return self.given[name] if name in self.given else getattr(self, name)

    def _leaves(self, k: int, seen: list[torch.Tensor]) -> torch.Tensor | bool:
        """Whether the sample leaves at exit ``k`` (not the last), from the probabilities ``[1, C]`` of exits ``0..k``:
        a bool scalar tensor, or a Python bool where the policy decides without looking (static)."""
        s, p = self.sched, seen[k]
        if isinstance(s, StaticScheduler):
            return k == s.exit_index
        if isinstance(s, PatienceScheduler):
            return s._passes(seen, s.patience_, s.confidence_)[k][0]
        if isinstance(s, EENetScheduler):
            from eenet.schedulers.eenet import base_features, forward

            weights = {key: [self._buf(f"eenet_{key}{j}") for j in range(k + 1)] for key in ("a", "b")}
            z, _ = forward(weights, base_features(torch.stack(seen).float(), s.class_inputs), assignment=False)
            return (torch.sigmoid(z[0]).T[k] >= self._buf("thresholds")[k])[0]
        if isinstance(s, TemperatureScaledScheduler):  # GeometricScheduler._score_at of the scaled probabilities
            from eenet.schedulers.scores import SCORES

            scaled = F.softmax(torch.log(p.float().clamp_min(1e-12)) / self._buf("temperatures")[k], dim=-1)
            return (SCORES[s.score](scaled.float()) >= self._buf("thresholds")[k])[0]
        return (s._score_at(k, p) >= self._buf("thresholds")[k])[0]

    def exit_step(
        self, k: int, state: torch.Tensor, seen: list[torch.Tensor], raw: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], tuple[torch.Tensor, ...], torch.Tensor | bool]:
        """Exit ``k`` of one sample: stage ``k``, what the policy reads there and its decision. ``seen``: what it read at
        exits ``0..k-1`` (``[1, C]`` each); ``raw``: their float logits (kept for a combined policy only). Returns
        ``(state, seen + [probs], raw, (label int64 [1], exit int64 [1], confidence float32 [1]), leave)``, ``leave``
        as :meth:`_leaves` gives it (``True`` at the last exit)."""
        state, logits = self.model.step(k, state)
        raw = [*raw, logits.float()] if self.policy.needs_logits else [logits]
        if self.combined:  # the combiner's step (CombinedPolicy.exit_outputs) on the program's buffers
            probs = self.policy.combiner.step(k, raw, {name: self._buf(f"combiner_{name}") for name in self.combiner_tensors})
        else:
            probs = self.policy.exit_outputs(k, raw)  # the softmax (ExitScheduler.exit_outputs)
        seen = [*seen, probs]
        conf, label = probs.max(dim=1).values, probs.argmax(dim=1)  # as the runtime reports them
        answer = (label, torch.full_like(label, k), conf)
        leave = True if k == self.model.num_exits - 1 else self._leaves(k, seen)
        return state, seen, raw, answer, leave

    def _from(self, k: int, state: torch.Tensor, seen: list[torch.Tensor], raw: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Exits ``k..`` of one sample (:meth:`exit_step`, then a ``torch.cond`` on its decision)."""
        state, seen, raw, answer, leave = self.exit_step(k, state, seen, raw)
        if isinstance(leave, bool):
            return answer if leave else self._from(k + 1, state, seen, raw)
        return torch.cond(leave, lambda st: tuple(t.clone() for t in answer), lambda st: self._from(k + 1, st, seen, raw), (state,))

    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        """``uint8 [1, C, S, S]`` -> the model's input ``float32 [1, C, S, S]`` (:func:`eenet.data.normalize`)."""
        return (image.float() / 255.0 - self.mean) / self.std

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self._from(0, self.model.begin(self.normalise(image)), [], [])


def check_exportable(meta: dict[str, Any], spec: DatasetSpec) -> None:
    """Refuse what no program of ours takes: text models and datasets without an image size or normalisation.

    Raises:
        ValueError: with the reason.
    """
    if is_text_model(str(meta["arch"])):
        raise ValueError(f"{meta['arch']} is a text model: export takes image models only (the tokenizer is not a PyTorch program)")
    if spec.image_size is None or spec.mean is None or spec.std is None:
        raise ValueError(f"dataset {spec.name}: its manifest gives no image size or normalisation")


def example_image(spec: DatasetSpec) -> torch.Tensor:
    """A zero image as the program takes it: ``uint8 [1, C, S, S]`` (``S`` the training size)."""
    return torch.zeros(1, spec.in_channels, int(spec.image_size or 0), int(spec.image_size or 0), dtype=torch.uint8)


def describe(model: MultiExitNetwork, spec: DatasetSpec, info: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """What :data:`EXTRA_FILE` holds: the input (shape, dtype, how to decode a file), the outputs, the class names, the
    number of exits, ``info`` (the policy) and ``fields`` (which override the defaults, e.g. ``format``)."""
    classes = list(spec.classes) if spec.classes else [str(c) for c in range(model.num_classes)]
    mode = "L" if spec.in_channels == 1 else "RGB"
    return {
        "format": "eenet-exported-policy/1",
        "input": {
            "dtype": "uint8",
            "shape": list(example_image(spec).shape),
            "meaning": "one image, pixel values as decoded",
            # what the dataset's reader does to every file first (a grey PNG of an RGB folder is made RGB)
            "pil_mode": mode,
            "convert": f"PIL.Image.open(path).convert({mode!r}), resized to {spec.image_size}",
        },
        "outputs": ["label int64 [1]", "exit int64 [1]", "confidence float32 [1]"],
        "classes": classes,
        "num_exits": model.num_exits,
        **info,
        **fields,
    }


def export_policy(
    model: MultiExitNetwork, sched: ExitScheduler, spec: DatasetSpec, meta: dict[str, Any], out: str | Path, info: dict[str, Any]
) -> Path:
    """Export ``model`` under ``sched`` to ``out`` (a ``.pt2`` archive, written atomically); ``info`` is stored in
    :data:`EXTRA_FILE` beside the classes and the input shape.

    Raises:
        ValueError: what cannot be exported (see the module docstring), with the reason.
    """
    check_exportable(meta, spec)
    assert spec.mean is not None and spec.std is not None  # checked above
    program = ExitProgram(model.cpu(), sched, spec.mean, spec.std).eval()
    example = example_image(spec)
    try:
        with torch.no_grad():
            exported = torch.export.export(program, (example,))
    except Exception as exc:  # torch.export raises many kinds (Unsupported, UserError, TorchRuntimeError, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        why = "architectures whose stages pass one tensor are supported"
        if "duplicate argument" in first:  # nested torch.cond branches that read the outputs of earlier exits
            why = (f"torch.export fails on {model.num_exits} nested exits for a policy that reads earlier exits' outputs "
                   "(patience, EENet, a combiner; threshold policies export); use `eenet export --compiled` (one program per exit) "
                   "or `eenet predict` (the runtime)")  # fmt: skip
        raise ValueError(f"{meta['arch']} under {sched.method} could not be exported ({type(exc).__name__}: {first}); {why}") from exc
    extra = describe(model, spec, info)
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        torch.export.save(exported, fh, extra_files={EXTRA_FILE: json.dumps(extra, allow_nan=False)})
    return Path(out)


def load_exported(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """``(program, description)`` of an exported file: what the documentation's example does, with PyTorch alone."""
    extra = {EXTRA_FILE: ""}
    program = torch.export.load(str(path), extra_files=extra).module()
    return program, json.loads(extra[EXTRA_FILE])


def results_policy(
    results_dir: str | Path, method: str, budget: float | str
) -> tuple[MultiExitNetwork, ExitScheduler, DatasetSpec, dict[str, Any], dict[str, Any]]:
    """``(model, sched, spec, meta, info)`` of ``results_dir``'s model under its ``method`` policy at ``budget`` (checked
    as :func:`eenet.predict.load_policy`); ``info`` is what the description says of the policy."""
    from eenet.models import load_model
    from eenet.predict import dataset_of, find_policy, load_policy

    policy = find_policy(results_dir, method, budget)
    model_path = Path(results_dir) / "model.pt"
    sched, fitted = load_policy(policy, model_path)
    model, meta = load_model(str(model_path), "cpu")
    info = {"method": sched.method, "budget_value": fitted.get("budget_value"), "budget_ms": fitted.get("budget_ms"),
            "model_sha256": file_sha256(model_path), "policy": str(policy)}  # fmt: skip
    return model, sched, dataset_of(results_dir, meta), meta, info


def export_results(results_dir: str | Path, method: str, budget: float | str, out: str | Path) -> Path:
    """Export ``results_dir``'s model under its ``method`` policy at ``budget`` (checked as :func:`eenet.predict.load_policy`)."""
    model, sched, spec, meta, info = results_policy(results_dir, method, budget)
    return export_policy(model, sched, spec, meta, out, info)
