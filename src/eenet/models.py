"""Multi-exit networks, built by explicit builders (like torchvision's) with their exits declared.

A :class:`MultiExitNetwork` is a chain of ``stages``; exit ``k`` reads the output of stage ``k`` through
``heads[k]``. ``forward(x)`` returns the logits of every exit; ``forward_until(x, k)`` stops after exit
``k`` (0-based) and returns the logits of exits ``0..k`` — exactly what early-exit inference computes to
decide whether a sample leaves at exit ``k``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = [
    "ExitHead",
    "MultiExitNetwork",
    "small_cnn_3",
    "build_model",
    "MODEL_BUILDERS",
]


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ExitHead(nn.Module):
    """The paper's exit head: conv3x3 (C -> C/4), BN, ReLU, 2x[conv3x3, BN, ReLU], global pool, linear.

    Input ``[B, C, H, W]`` -> logits ``[B, num_classes]``.
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        mid = max(channels // 4, 8)
        self.features = nn.Sequential(_conv_bn_relu(channels, mid), _conv_bn_relu(mid, mid), _conv_bn_relu(mid, mid))
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


class MultiExitNetwork(nn.Module):
    """A backbone cut into stages, one exit head after each stage.

    Args:
        stages: ``K`` modules applied in sequence.
        heads: ``K`` modules; ``heads[k]`` maps the output of ``stages[k]`` to logits ``[B, C]``.
        num_classes: ``C``.
    """

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

    def forward_until(self, x: torch.Tensor, exit_index: int) -> list[torch.Tensor]:
        """Logits of exits ``0..exit_index``, each ``[B, C]``; later stages are not computed."""
        if not 0 <= exit_index < self.num_exits:
            raise IndexError(f"exit_index {exit_index} out of range for {self.num_exits} exits")
        out = []
        for k in range(exit_index + 1):
            x = self.stages[k](x)
            out.append(self.heads[k](x))
        return out

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Logits of every exit: a list of ``K`` tensors ``[B, C]``."""
        return self.forward_until(x, self.num_exits - 1)


def small_cnn_3(num_classes: int = 10, in_channels: int = 1, width: int = 32) -> MultiExitNetwork:
    """A small 3-exit CNN for 28x28 images (Fashion-MNIST).

    Stages: [2 conv @28x28, pool] -> [2 conv @14x14, pool] -> [2 conv @7x7]; widths w, 2w, 4w.
    Exits 0 and 1 use :class:`ExitHead`; the last exit is pool + linear.
    """
    w = width
    stages = [
        nn.Sequential(_conv_bn_relu(in_channels, w), _conv_bn_relu(w, w), nn.MaxPool2d(2)),
        nn.Sequential(_conv_bn_relu(w, 2 * w), _conv_bn_relu(2 * w, 2 * w), nn.MaxPool2d(2)),
        nn.Sequential(_conv_bn_relu(2 * w, 4 * w), _conv_bn_relu(4 * w, 4 * w)),
    ]
    heads = [ExitHead(w, num_classes), ExitHead(2 * w, num_classes), PoolLinearHead(4 * w, num_classes)]
    return MultiExitNetwork(stages, heads, num_classes)


MODEL_BUILDERS: dict[str, Callable[..., MultiExitNetwork]] = {
    "small_cnn_3": small_cnn_3,
}


def build_model(arch: str, num_classes: int, in_channels: int, **kwargs: object) -> MultiExitNetwork:
    """Build the architecture named ``arch`` (a key of :data:`MODEL_BUILDERS`)."""
    try:
        builder = MODEL_BUILDERS[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(MODEL_BUILDERS)}") from None
    return builder(num_classes=num_classes, in_channels=in_channels, **kwargs)


def save_model(path: str, model: MultiExitNetwork, meta: dict[str, object]) -> None:
    """Save weights + how to rebuild them (``arch``, ``arch_kwargs``, ``num_classes``, ``in_channels``, ...)."""
    from .io import save_checkpoint

    save_checkpoint(path, {**meta, "state_dict": model.state_dict()})


def load_model(path: str, device: torch.device | str = "cpu") -> tuple[MultiExitNetwork, dict[str, object]]:
    """Rebuild a model saved by :func:`save_model` (``weights_only`` load); returns ``(model, meta)``."""
    from .io import load_checkpoint

    state = load_checkpoint(path)
    meta = {k: v for k, v in state.items() if k != "state_dict"}
    model = build_model(str(meta["arch"]), int(meta["num_classes"]), int(meta["in_channels"]), **dict(meta.get("arch_kwargs") or {}))
    model.load_state_dict(state["state_dict"])
    return model.to(device).eval(), meta
