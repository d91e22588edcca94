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
(docs/use.md). Compiled with ``swappable=True`` (what :mod:`eenet.measure.compiled_runtime` times), the segments take
what the policy learned as inputs, and :meth:`CompiledPolicy.use` gives them those of any fit of the same structure.
:class:`CutProgram` is the network cut after an exit (the plain network at the last), compiled alike by
:func:`compile_cut`. Compiling takes ~10-20 s per exit on a CPU (a C++ compiler is needed where it is compiled, not where
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

__all__ = [
    "ExitSegment", "structure_key", "CutProgram", "compile_cut", "CompiledCut", "CompiledPolicy", "compile_policy", "compile_results",
    "compiled_predictions", "FORMAT", "CUT_FORMAT",
]  # fmt: skip

log = logging.getLogger(__name__)

FORMAT = "eenet-compiled-policy/1"
"""The description's ``format`` of a compiled package."""
CUT_FORMAT = "eenet-compiled-cut/1"
"""The description's ``format`` of a compiled cut (:func:`compile_cut`)."""

Segment = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class ExitSegment(nn.Module):
    """Exit ``k`` of ``program`` as a program of its own (see the module docstring): ``(state, probs [K, 1, C], raw
    [K, 1, C]) -> (state, probs, raw, leave bool [1], label int64 [1], confidence float32 [1])``; at ``k = 0`` its input
    is the image ``uint8 [1, C, S, S]`` alone. With ``swappable=True`` every segment takes ``(state, probs, raw)`` (at
    ``k = 0``: the image and two ignored zero tensors ``[K, 1, C]``) and after them what the policy learned
    (:meth:`eenet.export.ExitProgram.learned`, in that order) as inputs instead of constants: one compiled program then
    serves every fit of the same structure (:func:`structure_key`), e.g. every budget of a threshold policy."""

    def __init__(self, program: ExitProgram, k: int, swappable: bool = False) -> None:
        super().__init__()
        self.program, self.k = program, k
        self.num_exits, self.num_classes = program.model.num_exits, program.model.num_classes
        self.learned = list(program.learned()) if swappable else []

    def forward(
        self, state: torch.Tensor, probs: torch.Tensor | None = None, raw: torch.Tensor | None = None, *learned: torch.Tensor
    ) -> Segment:
        k, program = self.k, self.program
        if k == 0:  # the image: normalised and begun as ExitProgram.forward does; nothing read yet
            state = program.model.begin(program.normalise(state))
            probs = raw = torch.zeros(self.num_exits, 1, self.num_classes, dtype=torch.float32)
        assert probs is not None and raw is not None
        program.given = dict(zip(self.learned, learned, strict=True))
        try:
            seen = [probs[j] for j in range(k)]
            logits = [raw[j] for j in range(k)] if program.policy.needs_logits else []
            state, seen, logits, (label, _, conf), leave = program.exit_step(k, state, seen, logits)
        finally:
            program.given = {}
        probs = torch.cat([probs[:k], seen[-1].float().unsqueeze(0), probs[k + 1 :]])
        raw = torch.cat([raw[:k], logits[-1].float().unsqueeze(0), raw[k + 1 :]])
        leave = torch.full((1,), leave, dtype=torch.bool) if isinstance(leave, bool) else leave.reshape(1)
        return state, probs, raw, leave, label, conf


def structure_key(program: ExitProgram) -> tuple[Any, ...]:
    """What a compiled swappable segment bakes in (everything but :meth:`~eenet.export.ExitProgram.learned`'s values):
    programs with equal keys run the same compiled code with their own learned tensors as inputs. The method (the
    combiner and the score), the class that decides (an EENet fit that fell back to MaxPred decides as MaxPred),
    patience's count and confidence, a static policy's exit, the normalisation and the learned tensors' names and shapes."""
    s = program.sched
    shapes = tuple((name, tuple(t.shape)) for name, t in program.learned().items())
    fixed = (getattr(s, "patience_", None), getattr(s, "confidence_", None), getattr(s, "exit_index", None))
    return (program.policy.method, type(s).__name__, fixed, program.mean.tolist(), program.std.tolist(), shapes)


def _compile(segment: nn.Module, args: tuple[torch.Tensor, ...]) -> list[Any]:
    """The AOTInductor files of one segment (CPU), constants inside its shared library; ``args``: its example inputs."""
    with torch.no_grad():
        exported = torch.export.export(segment, args)
    options = {"aot_inductor.package": True, "aot_inductor.package_constants_in_so": True}
    files = torch._inductor.aot_compile(exported.module(check_guards=False), *exported.example_inputs, options=options)
    assert isinstance(files, list), files
    return files


def compile_policy(
    model: MultiExitNetwork,
    sched: ExitScheduler,
    spec: DatasetSpec,
    meta: dict[str, Any],
    out: str | Path,
    info: dict[str, Any],
    swappable: bool = False,
) -> Path:
    """Compile ``model`` under ``sched`` (one segment per exit) into the package ``out`` (written atomically); ``info``
    goes into its description as in :func:`eenet.export.export_policy`, with ``compile_s``, the compile time.
    ``swappable``: what the policy learned becomes inputs of every segment (:class:`ExitSegment`; the description's
    ``learned`` names them and ``structure`` is :func:`structure_key`), to be given by :meth:`CompiledPolicy.use`.

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
        learned = tuple(t.clone() for t in program.learned().values()) if swappable else ()
        if swappable:  # segment 0 takes (and ignores) probs and raw too: every segment's inputs have one layout
            args = (*args, *[torch.zeros(model.num_exits, 1, model.num_classes)] * 2)
    for k in range(model.num_exits):
        segment = ExitSegment(program, k, swappable).eval()
        with torch.inference_mode(False), torch.no_grad():  # its outputs: the next segment's example inputs
            passed = segment(*args, *learned)
        if not isinstance(passed[0], torch.Tensor):  # what a segment passes on must be one tensor (the loop's layout)
            raise ValueError(f"{meta['arch']} under {sched.method} could not be compiled: its stages pass a {type(passed[0]).__name__} "
                             "(several scales), and compiled segments take architectures whose stages pass one tensor")  # fmt: skip
        try:
            with torch.inference_mode(False):
                files[f"exit{k}"] = _compile(segment, (*args, *learned))
        except Exception as exc:  # torch.export / inductor raise many kinds
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            why = f"{type(exc).__name__}: {first}"
            raise ValueError(f"{meta['arch']} under {sched.method}: exit {k} could not be compiled ({why})") from exc
        args = passed[:3]
        log.info("compiled exit %d of %d (%.0f s so far)", k + 1, model.num_exits, time.perf_counter() - start)
    outputs = ["state", "probs float32 [K, 1, C]", "raw float32 [K, 1, C]", "leave bool [1]", "label int64 [1]", "confidence float32 [1]"]
    seconds = round(time.perf_counter() - start, 1)
    swap = {"learned": list(program.learned()), "structure": json.dumps(structure_key(program))} if swappable else {}
    extra = describe(
        model, spec, info, format=FORMAT, outputs=outputs, segments=list(files), compile_s=seconds, torch_version=torch.__version__, **swap
    )
    from torch.export.pt2_archive._package import package_pt2

    with atomic_path(out) as tmp, open(tmp, "w+b") as fh:
        package_pt2(fh, aoti_files=files, extra_files={EXTRA_FILE: json.dumps(extra, allow_nan=False)})
    return Path(out)


class CutProgram(nn.Module):
    """The network cut after exit ``exit_index`` as a plain network of its own (:func:`eenet.measure.costs.run_cut`:
    stages ``0..exit_index`` and that exit's head only, no decision), from the image: ``uint8 [1, C, S, S] -> (label
    int64 [1], confidence float32 [1])``. The last exit's cut is the plain network."""

    def __init__(self, model: MultiExitNetwork, mean: tuple[float, ...], std: tuple[float, ...], exit_index: int) -> None:
        super().__init__()
        self.model, self.exit_index = model.eval(), exit_index
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        state = self.model.begin((image.float() / 255.0 - self.mean) / self.std)
        for k in range(self.exit_index + 1):
            state = self.model.advance(k, state)
        probs = self.model.head(self.exit_index, state).float().softmax(dim=1)
        return probs.argmax(dim=1), probs.max(dim=1).values


def compile_cut(model: MultiExitNetwork, spec: DatasetSpec, exit_index: int, out: str | Path) -> Path:
    """Compile :class:`CutProgram` (CPU, batch 1) into the package ``out`` (one model, ``cut``; written atomically);
    :class:`CompiledCut` loads it."""
    assert spec.mean is not None and spec.std is not None and spec.image_size
    program = CutProgram(model.cpu(), spec.mean, spec.std, exit_index).eval()
    start = time.perf_counter()
    with torch.inference_mode(False):
        files = _compile(program, (example_image(spec),))
    extra = {"format": CUT_FORMAT, "exit_index": exit_index, "num_exits": model.num_exits,
             "compile_s": round(time.perf_counter() - start, 1), "torch_version": torch.__version__}  # fmt: skip
    from torch.export.pt2_archive._package import package_pt2

    with atomic_path(out) as tmp, open(tmp, "w+b") as fh:
        package_pt2(fh, aoti_files={"cut": files}, extra_files={EXTRA_FILE: json.dumps(extra)})
    return Path(out)


class CompiledCut:
    """A package of :func:`compile_cut`, loaded: ``cut(image uint8 [1, C, S, S]) -> label`` (a Python int); ``info``:
    its description (``exit_index``, ``compile_s``)."""

    def __init__(self, path: str | Path) -> None:
        from torch.export.pt2_archive._package import load_pt2

        contents = load_pt2(str(path))
        self.info = json.loads(contents.extra_files[EXTRA_FILE])
        if self.info.get("format") != CUT_FORMAT:
            raise ValueError(f"{path}: not a compiled cut (format {self.info.get('format')!r})")
        self._run = contents.aoti_runners["cut"].loader.run  # type: ignore[attr-defined]

    def __call__(self, image: torch.Tensor) -> int:
        return int(self._run([image.contiguous()])[0].item())


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
        self._learned: list[torch.Tensor] | None = None if info.get("learned") else []
        # segment 0's inputs after the image: none, or (swappable) probs and raw, which it ignores: zeros
        self._first = [torch.zeros(int(info["num_exits"]), 1, len(info["classes"]))] * 2 if info.get("learned") else []

    def use(self, program: ExitProgram) -> CompiledPolicy:
        """Run, from now on, with what ``program``'s policy learned (a package compiled with ``swappable=True``): its
        :meth:`~eenet.export.ExitProgram.learned` tensors become the segments' inputs. Returns ``self``.

        Raises:
            ValueError: a package compiled without ``swappable``, or for a program of another structure
                (:func:`structure_key`: another method, patience count, normalisation, ...).
        """
        if not self.info.get("learned"):
            raise ValueError("this package was compiled with its policy's tensors inside: it runs that policy only")
        key = json.dumps(structure_key(program))
        if key != self.info["structure"]:
            raise ValueError(f"the package was compiled for {self.info['structure']}, not {key}")
        self._learned = [t.detach().contiguous() for t in program.learned().values()]
        return self

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
        learned = self._learned
        if learned is None:
            raise ValueError("the package takes its policy's learned tensors as inputs: give them with CompiledPolicy.use(program)")
        out, k = self._run[0]([image.contiguous(), *self._first, *learned]), 0
        while not out[3].item():
            k += 1
            out = self._run[k]([*out[:3], *learned])
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
