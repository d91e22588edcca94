"""The model and its exit policy compiled ahead of time: one AOTInductor program per exit, in one ``.pt2`` package.

Exit ``k``'s segment runs stage ``k``, what the policy reads there and the policy's decision, all compiled (AOTInductor,
CPU, batch 1); the loop between them is Python, and it knows nothing of the policy:

    policy = CompiledPolicy.load("maxpred_compiled.pt2")
    label, exit_index, confidence = policy(image)        # image: uint8 [1, C, S, S], pixel values as decoded

Segment ``0`` takes the image; every segment returns ``(state, probs [K, 1, C] float32, raw [K, 1, C] float32,
leave bool [1], label int64 [1], confidence float32 [1])``: the stage's output, what the policy read at exits
``0..k`` (rows ``k+1..`` zero), the float logits of exits ``0..k`` (read by a combined policy only), whether the sample
leaves at exit ``k`` (``True`` at the last), and the answer there. Segment ``k > 0`` takes the first three. The
pieces are :class:`eenet.export.ExitProgram`'s (:meth:`~eenet.export.ExitProgram.exit_step`: the same decision code and
buffers as ``eenet export``'s program); only the control flow differs: no ``torch.cond``, whose AOTInductor build
sends samples to the wrong exit on the pinned torch (``tests/test_compiled.py`` checks the segmented one against the
runtime and the cached evaluation).

The package (``torch.export.pt2_archive``'s format) holds the segments as models ``exit0``, ``exit1``, ... and the
description :data:`eenet.export.EXTRA_FILE`; ``torch.export.pt2_archive._package.load_pt2`` loads it with PyTorch alone
(docs/use.md). Compiling takes ~10-20 s per exit on a CPU (a C++ compiler is needed where it is compiled, not where
it runs: the package holds the shared libraries, which run on machines of the same platform and torch version).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from eenet.data import DatasetSpec
from eenet.export import EXTRA_FILE, ExitProgram, check_exportable, describe, example_image, results_policy
from eenet.io import atomic_path
from eenet.models import MultiExitNetwork
from eenet.predict import Predictions, read_inputs
from eenet.schedulers import ExitScheduler

__all__ = ["ExitSegment", "CompiledPolicy", "compile_policy", "compile_results", "compiled_predictions", "FORMAT"]

log = logging.getLogger(__name__)

FORMAT = "eenet-compiled-policy/1"
"""The description's ``format`` of a compiled package."""

Segment = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class ExitSegment(nn.Module):
    """Exit ``k`` of ``program`` as a program of its own (see the module docstring): ``(state, probs [K, 1, C], raw
    [K, 1, C]) -> (state, probs, raw, leave bool [1], label int64 [1], confidence float32 [1])``; at ``k = 0`` its input
    is the image ``uint8 [1, C, S, S]`` alone."""

    def __init__(self, program: ExitProgram, k: int) -> None:
        super().__init__()
        self.program, self.k = program, k
        self.num_exits, self.num_classes = program.model.num_exits, program.model.num_classes

    def forward(self, state: torch.Tensor, probs: torch.Tensor | None = None, raw: torch.Tensor | None = None) -> Segment:
        k, program = self.k, self.program
        if k == 0:  # the image: normalised and begun as ExitProgram.forward does; nothing read yet
            state = program.model.begin(program.normalise(state))
            probs = raw = torch.zeros(self.num_exits, 1, self.num_classes, dtype=torch.float32)
        assert probs is not None and raw is not None
        seen = [probs[j] for j in range(k)]
        logits = [raw[j] for j in range(k)] if program.policy.needs_logits else []
        state, seen, logits, (label, _, conf), leave = program.exit_step(k, state, seen, logits)
        probs = torch.cat([probs[:k], seen[-1].float().unsqueeze(0), probs[k + 1 :]])
        raw = torch.cat([raw[:k], logits[-1].float().unsqueeze(0), raw[k + 1 :]])
        leave = torch.full((1,), leave, dtype=torch.bool) if isinstance(leave, bool) else leave.reshape(1)
        return state, probs, raw, leave, label, conf


def _compile(segment: ExitSegment, args: tuple[torch.Tensor, ...]) -> list[Any]:
    """The AOTInductor files of one segment (CPU), constants inside its shared library; ``args``: its example inputs."""
    with torch.no_grad():
        exported = torch.export.export(segment, args)
    options = {"aot_inductor.package": True, "aot_inductor.package_constants_in_so": True}
    files = torch._inductor.aot_compile(exported.module(check_guards=False), *exported.example_inputs, options=options)
    assert isinstance(files, list), files
    return files


def compile_policy(
    model: MultiExitNetwork, sched: ExitScheduler, spec: DatasetSpec, meta: dict[str, Any], out: str | Path, info: dict[str, Any]
) -> Path:
    """Compile ``model`` under ``sched`` (one segment per exit) into the package ``out`` (written atomically); ``info``
    goes into its description as in :func:`eenet.export.export_policy`, with ``compile_s``, the compile time.

    Raises:
        ValueError: what cannot be compiled (a text model, a policy that reads the labels, a kind of policy
            :class:`~eenet.export.ExitProgram` does not express, a segment torch cannot export), with the reason.
    """
    check_exportable(meta, spec)
    assert spec.mean is not None and spec.std is not None  # checked above
    program = ExitProgram(model.cpu(), sched, spec.mean, spec.std).eval()
    start = time.perf_counter()
    files: dict[str, list[Any]] = {}
    with torch.inference_mode(False):  # a caller's inference mode: torch.export takes no inference tensors
        args: tuple[torch.Tensor, ...] = (example_image(spec),)
    for k in range(model.num_exits):
        segment = ExitSegment(program, k).eval()
        try:
            with torch.inference_mode(False):
                files[f"exit{k}"] = _compile(segment, args)
        except Exception as exc:  # torch.export / inductor raise many kinds
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            why = f"{type(exc).__name__}: {first}"
            raise ValueError(f"{meta['arch']} under {sched.method}: exit {k} could not be compiled ({why})") from exc
        with torch.inference_mode(False), torch.no_grad():
            args = segment(*args)[:3]
        log.info("compiled exit %d of %d (%.0f s so far)", k + 1, model.num_exits, time.perf_counter() - start)
    outputs = ["state", "probs float32 [K, 1, C]", "raw float32 [K, 1, C]", "leave bool [1]", "label int64 [1]", "confidence float32 [1]"]
    seconds = round(time.perf_counter() - start, 1)
    extra = describe(
        model, spec, info, format=FORMAT, outputs=outputs, segments=list(files), compile_s=seconds, torch_version=torch.__version__
    )
    from torch.export.pt2_archive._package import package_pt2

    with atomic_path(out) as tmp, open(tmp, "w+b") as fh:
        package_pt2(fh, aoti_files=files, extra_files={EXTRA_FILE: json.dumps(extra, allow_nan=False)})
    return Path(out)


def compile_results(results_dir: str | Path, method: str, budget: float | str, out: str | Path) -> Path:
    """:func:`compile_policy` of ``results_dir``'s model under its ``method`` policy at ``budget`` (``eenet export
    --compiled``)."""
    model, sched, spec, meta, info = results_policy(results_dir, method, budget)
    return compile_policy(model, sched, spec, meta, out, info)


class CompiledPolicy:
    """A compiled package, loaded: ``policy(image uint8 [1, C, S, S]) -> (label, exit, confidence)`` as Python numbers.

    ``info``: its description (classes, input shape, the policy, ``compile_s``); ``segments``: the loaded programs.
    """

    def __init__(self, segments: list[Callable[..., Any]], info: dict[str, Any]) -> None:
        self.segments, self.info = segments, info
        self.shape = tuple(info["input"]["shape"])
        self._run = [s.loader.run for s in segments]  # type: ignore[attr-defined]  (no pytree (un)flattening per call)

    @classmethod
    def load(cls, path: str | Path) -> CompiledPolicy:
        """Load a package written by :func:`compile_policy`.

        Raises:
            ValueError: not such a package (e.g. a ``torch.export`` program of ``eenet export`` without ``--compiled``).
        """
        from torch.export.pt2_archive._package import load_pt2

        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file")
        try:
            contents = load_pt2(str(path))
            info = json.loads(contents.extra_files[EXTRA_FILE])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise ValueError(f"{path}: not a compiled eenet package ({type(exc).__name__}: {exc})") from None
        names = [f"exit{k}" for k in range(int(info.get("num_exits", 0)))]
        if info.get("format") != FORMAT or not names or any(n not in contents.aoti_runners for n in names):
            raise ValueError(f"{path}: not a compiled eenet package (format {info.get('format')!r}; `eenet export --compiled` writes one)")
        return cls([contents.aoti_runners[n] for n in names], info)

    def __call__(self, image: torch.Tensor) -> tuple[int, int, float]:
        if tuple(image.shape) != self.shape or image.dtype != torch.uint8:
            raise ValueError(f"the package takes one image uint8 {list(self.shape)}, got {image.dtype} {list(image.shape)}")
        out, k = self._run[0]([image.contiguous()]), 0
        while not out[3].item():
            k += 1
            out = self._run[k](out[:3])
        return int(out[4].item()), k, float(out[5].item())


def compiled_predictions(
    results_dir: str | Path, method: str, budget: float | str, package: str | Path, inputs: list[str | Path]
) -> tuple[list[str], Predictions]:
    """``eenet predict --compiled PACKAGE``: ``(names, Predictions)`` of the input files run through the compiled package
    of ``results_dir``'s policy (compiled into ``package`` first when that file does not exist). ``ms``: each sample's
    own wall time (batch 1), after one untimed call on the first.

    Raises:
        ValueError: a package of another model or policy, or one that cannot be compiled (see :func:`compile_policy`).
    """
    model, sched, spec, meta, info = results_policy(results_dir, method, budget)
    check_exportable(meta, spec)
    if not Path(package).exists():
        log.warning("%s does not exist: compiling %s's %d exits into it (~10-20 s each)", package, sched.method, model.num_exits)
        compile_policy(model, sched, spec, meta, package, info)
    policy = CompiledPolicy.load(package)
    for key in ("model_sha256", "method", "budget_value"):
        if policy.info.get(key) != info[key]:
            was, want = policy.info.get(key), info[key]
            raise ValueError(f"{package} was compiled for {key} {was!r}, not {want!r} ({results_dir}, {method} at {budget})")
    names, split = read_inputs(inputs, spec, str(meta["arch"]), dict(meta.get("arch_kwargs") or {}), 0)
    images = split.images  # type: ignore[attr-defined]  (an image split: uint8 [N, C, S, S])
    answers, ms = [], []
    if len(images):
        policy(images[:1])  # one untimed call: the first call's one-off set-up is nobody's latency
    for i in range(len(images)):
        start = time.perf_counter()
        answers.append(policy(images[i : i + 1]))
        ms.append((time.perf_counter() - start) * 1e3)
    labels = torch.tensor([a[0] for a in answers], dtype=torch.int64)
    exits = torch.tensor([a[1] for a in answers], dtype=torch.int64)
    conf = torch.tensor([a[2] for a in answers], dtype=torch.float32)
    classes = policy.info["classes"]
    return names, Predictions(labels, exits, conf, torch.tensor(ms, dtype=torch.float64), [classes[i] for i in labels.tolist()])
