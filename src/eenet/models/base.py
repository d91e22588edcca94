"""The multi-exit network, the paper's exit heads, and the one registry of architectures.

A :class:`MultiExitNetwork` is a chain of ``stages``; exit ``k`` reads the output of stage ``k`` through
``heads[k]``. ``forward(x)`` returns the logits of every exit; ``forward_until(x, k)`` stops after exit
``k`` (0-based) and returns the logits of exits ``0..k`` -- exactly what early-exit inference computes to
decide whether a sample leaves at exit ``k``; ``forward_plain(x)`` is the network without early exit (every
stage, the last head only).

Architectures are explicit builders (as torchvision's), registered with :func:`register_model`;
:func:`build_model` builds one by name, :func:`prepare_model` puts it on a device.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from eenet.catalog import ARCH_FAMILIES, ARCHITECTURES, arch_modality
from eenet.inputs import Inputs

__all__ = [
    "ExitHead",
    "PoolLinearHead",
    "ConvLinearHead",
    "HEADS",
    "exit_head",
    "MultiExitNetwork",
    "single_exit",
    "State",
    "select_samples",
    "ModelEntry",
    "MODELS",
    "register_model",
    "register_family",
    "FAMILIES",
    "build_model",
    "is_text_model",
    "prepare_model",
    "save_model",
    "load_model",
]


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ExitHead(nn.Module):
    """The paper's exit head: conv3x3 (C -> C/4), BN, ReLU, 2x[conv3x3, BN, ReLU], global pool, linear (``convs``: how
    many conv-BN-ReLU, 3 in the paper).

    Input ``[B, C, H, W]`` -> logits ``[B, num_classes]``.
    """

    def __init__(self, channels: int, num_classes: int, convs: int = 3) -> None:
        super().__init__()
        mid = max(channels // 4, 8)
        self.features = nn.Sequential(_conv_bn_relu(channels, mid), *(_conv_bn_relu(mid, mid) for _ in range(convs - 1)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(mid, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class PoolLinearHead(nn.Module):
    """A final classifier: global average pool + linear. ``[B, C, H, W]`` -> ``[B, num_classes]``."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(x), 1))


class ConvLinearHead(ExitHead):
    """The paper's head with one conv instead of three: conv3x3 (C -> max(C/4, 8)), BN, ReLU, global pool, linear.
    ``[B, C, H, W]`` -> ``[B, num_classes]``."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__(channels, num_classes, convs=1)


HEADS: dict[str, type[nn.Module]] = {"paper": ExitHead, "conv_linear": ConvLinearHead, "pool_linear": PoolLinearHead}
"""The intermediate exit heads an architecture's ``head`` keyword names, heaviest first: the paper's three convs, one
conv, or pool + linear (no conv: the cheapest at batch 1, where each op costs its dispatch)."""


def exit_head(kind: str, channels: int, num_classes: int, *, arch: str = "") -> nn.Module:
    """The intermediate exit head ``kind`` (one of :data:`HEADS`) on ``channels`` feature maps.

    Raises ``ValueError`` naming ``arch`` and the known heads for an unknown ``kind``.
    """
    if kind not in HEADS:
        raise ValueError(f"{arch + ': ' if arch else ''}arch_kwargs.head must be one of {', '.join(HEADS)}, got {kind!r}")
    return HEADS[kind](channels, num_classes)


State = torch.Tensor | list | tuple | dict
"""What flows between stages: a tensor, or a list / tuple / dict of tensors (MSDNet's scales, a transformer's
hidden states with its attention mask), every tensor with the batch first."""


def select_samples(state: State, keep: torch.Tensor) -> State:
    """The samples ``keep`` (``bool [B]`` or indices) of a stage state, whatever its structure."""
    if isinstance(state, torch.Tensor):
        return state[keep]
    if isinstance(state, dict):
        return {k: select_samples(v, keep) for k, v in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(select_samples(v, keep) for v in state)
    raise TypeError(f"cannot select samples of a {type(state).__name__}")


class MultiExitNetwork(nn.Module):
    """A backbone cut into stages, one exit head after each stage.

    Args:
        stages: ``K`` modules applied in sequence.
        heads: ``K`` modules; ``heads[k]`` maps the output of ``stages[k]`` to logits ``[B, C]``.
        num_classes: ``C``.
    """

    # CNNs run channels_last on CUDA (faster convolutions); see prepare_model
    channels_last_on_cuda: ClassVar[bool] = True

    def __init__(self, stages: list[nn.Module], heads: list[nn.Module], num_classes: int) -> None:
        super().__init__()
        if len(stages) != len(heads) or not stages:
            raise ValueError(f"need one head per stage, got {len(stages)} stages and {len(heads)} heads")
        self.stages = nn.ModuleList(stages)
        self.heads = nn.ModuleList(heads)
        self.num_classes = num_classes

    @property
    def num_exits(self) -> int:
        return len(self.stages)

    def _check_exit(self, exit_index: int) -> None:
        if not 0 <= exit_index < self.num_exits:
            raise IndexError(f"exit_index {exit_index} out of range for {self.num_exits} exits")

    # -- one stage at a time: what early-exit inference runs (eenet.measure.runtime) ---------------------------------
    def begin(self, x: Inputs) -> State:
        """The state stage 0 reads: the batch itself here (a transformer embeds it first)."""
        return x

    def advance(self, k: int, state: State) -> State:
        """Run stage ``k`` alone on ``state`` (the previous stage's output, batch first): no exit head."""
        return self.stages[k](state)

    def head(self, k: int, state: State) -> torch.Tensor:
        """Exit ``k``'s logits ``[B, C]`` from stage ``k``'s output ``state``."""
        return self.heads[k](state)

    def step(self, k: int, state: State) -> tuple[State, torch.Tensor]:
        """Run stage ``k`` on ``state`` (the previous stage's output, batch first); return its output and exit ``k``'s logits ``[B, C]``."""
        state = self.advance(k, state)
        return state, self.head(k, state)

    def forward_until(self, x: Inputs, exit_index: int) -> list[torch.Tensor]:
        """Logits of exits ``0..exit_index``, each ``[B, C]``; later stages are not computed."""
        self._check_exit(exit_index)
        state, out = self.begin(x), []
        for k in range(exit_index + 1):
            state, logits = self.step(k, state)
            out.append(logits)
        return out

    def forward(self, x: Inputs) -> list[torch.Tensor]:
        """Logits of every exit: a list of ``K`` tensors ``[B, C]``."""
        return self.forward_until(x, self.num_exits - 1)

    def forward_plain(self, x: Inputs) -> torch.Tensor:
        """The plain network, what a user runs without early exit: every stage and the last head only; logits ``[B, C]``.

        The intermediate heads are not computed, so this is the baseline a speed-up of early exit is quoted against.
        """
        state = self.begin(x)
        for k in range(self.num_exits - 1):
            state = self.advance(k, state)
        return self.head(self.num_exits - 1, self.advance(self.num_exits - 1, state))


def single_exit(stages: list[nn.Module], heads: list[nn.Module], num_classes: int, depth: int | None) -> MultiExitNetwork:
    """The multi-exit network of ``stages`` and ``heads`` (``depth`` ``None``), or the plain network of its first ``depth``
    stages with exit ``depth - 1``'s head only: one stage (those stages in order), one exit -- the architecture of the
    multi-exit network cut after that exit (:func:`eenet.measure.costs.run_cut`), a network of its own to train alone
    (the plain-network frontier, :mod:`eenet.analysis.frontier`). An architecture's ``depth`` keyword builds it."""
    if depth is None:
        return MultiExitNetwork(stages, heads, num_classes)
    if not 1 <= depth <= len(stages):
        raise ValueError(f"arch_kwargs.depth must be between 1 and {len(stages)} (the exits), got {depth}")
    return MultiExitNetwork([nn.Sequential(*stages[:depth])], [heads[depth - 1]], num_classes)


@dataclass(frozen=True)
class ModelEntry:
    """A registered architecture: its builder, what it reads (``image`` or ``text``), and for text models
    the weights (and tokenizer) it uses unless ``pretrained`` is given."""

    name: str
    builder: Callable[..., MultiExitNetwork]
    modality: str = "image"
    default_weights: str | None = None


MODELS: dict[str, ModelEntry] = {}
FAMILIES: dict[str, tuple[Callable[..., MultiExitNetwork], str, bool]] = {}
"""``<family>:<name>`` architectures (``torchvision:resnet18``): family -> (builder taking the name first, modality,
whether the name is also where the text model's tokenizer is)."""


def register_model(name: str | None = None, *, default_weights: str | None = None) -> Callable:
    """Decorator: register a builder under ``name`` (default: the function's name), a key of
    :data:`eenet.catalog.ARCHITECTURES`, which says what it reads.

    Image builders take keyword-only ``num_classes`` and ``in_channels``; text builders ``num_classes``
    and ``pretrained``.
    """

    def deco(fn: Callable[..., MultiExitNetwork]) -> Callable[..., MultiExitNetwork]:
        key = name or fn.__name__
        if key in MODELS:
            raise ValueError(f"architecture {key!r} is already registered")
        if key not in ARCHITECTURES:
            raise ValueError(f"architecture {key!r} is not in eenet.catalog.ARCHITECTURES: add it there with what it reads")
        MODELS[key] = ModelEntry(key, fn, ARCHITECTURES[key], default_weights)
        return fn

    return deco


def register_family(family: str, builder: Callable[..., MultiExitNetwork], *, weights_from_name: bool = False) -> None:
    """Register the architectures ``<family>:<name>`` (a key of :data:`eenet.catalog.ARCH_FAMILIES`, which says what
    they read): built by ``builder(name, num_classes=..., **arch_kwargs)``."""
    if family in FAMILIES:
        raise ValueError(f"architecture family {family!r} is already registered")
    if family not in ARCH_FAMILIES:
        raise ValueError(f"architecture family {family!r} is not in eenet.catalog.ARCH_FAMILIES: add it there with what it reads")
    FAMILIES[family] = (builder, ARCH_FAMILIES[family], weights_from_name)


def _entry(arch: str) -> ModelEntry:
    family, sep, name = arch.partition(":")
    if sep and family in FAMILIES:
        builder, modality, weights_from_name = FAMILIES[family]
        return ModelEntry(arch, functools.partial(builder, name), modality, name if weights_from_name else None)
    try:
        return MODELS[arch]
    except KeyError:
        families = ", ".join(f"{f}:<name>" for f in sorted(FAMILIES))
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(MODELS)}, {families}") from None


def is_text_model(arch: str) -> bool:
    """Whether ``arch`` reads token ids (a text model) rather than images (:func:`eenet.catalog.arch_modality`)."""
    return arch_modality(arch) == "text"


def build_model(arch: str, num_classes: int, in_channels: int | None = None, **kwargs: object) -> MultiExitNetwork:
    """Build the architecture registered as ``arch``; ``in_channels`` is read by image models only."""
    entry = _entry(arch)
    if entry.modality == "image" and in_channels is not None:
        kwargs["in_channels"] = in_channels
    return entry.builder(num_classes=num_classes, **kwargs)


def prepare_model(model: MultiExitNetwork, device: torch.device | str) -> MultiExitNetwork:
    """``model`` on ``device``, channels_last for CNNs on CUDA (the one place this is decided)."""
    device = torch.device(device)
    model = model.to(device)
    if device.type == "cuda" and model.channels_last_on_cuda:
        model = model.to(memory_format=torch.channels_last)
    return model


def save_model(path: str, model: MultiExitNetwork, meta: dict[str, object]) -> None:
    """Save weights + how to rebuild them (``arch``, ``arch_kwargs``, ``num_classes``, ``in_channels``, ...)."""
    from eenet.io import save_checkpoint

    save_checkpoint(path, {**meta, "state_dict": model.state_dict()})


def load_model(path: str, device: torch.device | str = "cpu") -> tuple[MultiExitNetwork, dict[str, object]]:
    """Rebuild a model saved by :func:`save_model` (``weights_only`` load), prepared for ``device``, in eval mode.

    Returns ``(model, meta)``.
    """
    from eenet.io import load_checkpoint

    state = load_checkpoint(path)
    meta = {k: v for k, v in state.items() if k != "state_dict"}
    model = build_model(str(meta["arch"]), int(meta["num_classes"]), int(meta["in_channels"]), **dict(meta.get("arch_kwargs") or {}))
    model.load_state_dict(state["state_dict"])
    return prepare_model(model, device).eval(), meta
