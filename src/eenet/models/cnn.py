"""The CNNs: a small 3-exit CNN and a 6-exit residual network (Fashion-MNIST), the paper's CIFAR networks (ResNet,
DenseNet-BC)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from eenet.models.base import ExitHead, MultiExitNetwork, PoolLinearHead, _conv_bn_relu, exit_head, register_model, single_exit

__all__ = ["small_cnn_3", "resnet_6", "resnet56_3", "densenet121_4"]


@register_model()
def small_cnn_3(
    *, num_classes: int = 10, in_channels: int = 1, width: int = 32, head: str = "paper", depth: int | None = None
) -> MultiExitNetwork:
    """A small 3-exit CNN for 28x28 images (Fashion-MNIST).

    Stages: [2 conv @28x28, pool] -> [2 conv @14x14, pool] -> [2 conv @7x7]; widths w, 2w, 4w.
    Exits 0 and 1 use the ``head`` of :data:`~eenet.models.base.HEADS` (the paper's :class:`ExitHead` by default);
    the last exit is pool + linear. ``depth``: the plain network of the first ``depth`` stages with that exit's head
    only (:func:`~eenet.models.base.single_exit`).
    """
    w = width
    stages = [
        nn.Sequential(_conv_bn_relu(in_channels, w), _conv_bn_relu(w, w), nn.MaxPool2d(2)),
        nn.Sequential(_conv_bn_relu(w, 2 * w), _conv_bn_relu(2 * w, 2 * w), nn.MaxPool2d(2)),
        nn.Sequential(_conv_bn_relu(2 * w, 4 * w), _conv_bn_relu(4 * w, 4 * w)),
    ]
    heads = [exit_head(head, c, num_classes, arch="small_cnn_3") for c in (w, 2 * w)] + [PoolLinearHead(4 * w, num_classes)]
    return single_exit(stages, heads, num_classes, depth)


# --- ResNet (CIFAR, bottleneck) -------------------------------------------------------------------


class Bottleneck(nn.Module):
    """1x1 (C_in -> c), 3x3 (c -> c, stride), 1x1 (c -> 4c), with a projection shortcut when shapes change."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(cin, planes, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


@register_model()
def resnet56_3(*, num_classes: int = 10, in_channels: int = 3, blocks: Sequence[int] = (9, 9, 9), width: int = 16) -> MultiExitNetwork:
    """The paper's CIFAR-10 network: bottleneck ResNet [9, 9, 9], widths 16/32/64 (x4 out), 3 exits.

    Stem conv3x3 -> stage 1 (32x32, 4w channels) -> stage 2 (16x16, 8w) -> stage 3 (8x8, 16w).
    Exits after stages 1 and 2 use :class:`ExitHead`; the final exit is pool + linear.
    Input ``[B, in_channels, 32, 32]``.
    """
    stages: list[nn.Module] = []
    cin = width
    for s, n in enumerate(blocks):
        planes = width * 2**s
        layers: list[nn.Module] = []
        for b in range(n):
            layers.append(Bottleneck(cin, planes, stride=2 if (s > 0 and b == 0) else 1))
            cin = planes * Bottleneck.expansion
        if s == 0:
            layers.insert(0, _conv_bn_relu(in_channels, width))
        stages.append(nn.Sequential(*layers))
    chans = [width * 2**s * Bottleneck.expansion for s in range(len(blocks))]
    heads: list[nn.Module] = [ExitHead(c, num_classes) for c in chans[:-1]] + [PoolLinearHead(chans[-1], num_classes)]
    return MultiExitNetwork(stages, heads, num_classes)


class BasicBlock(nn.Module):
    """conv3x3 (stride) -> BN -> ReLU -> conv3x3 -> BN, plus the input (a 1x1 projection when shapes change), ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
        )
        same = stride == 1 and cin == cout
        self.shortcut = nn.Identity() if same else nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


@register_model()
def resnet_6(
    *,
    num_classes: int = 10,
    in_channels: int = 1,
    blocks: Sequence[int] = (2, 2, 2),
    width: int = 16,
    head: str = "paper",
    depth: int | None = None,
) -> MultiExitNetwork:
    """A small residual network with an exit after every residual block: ``sum(blocks)`` exits (6 by default).

    Stem conv3x3 (w channels), then for scale ``s`` ``blocks[s]`` :class:`BasicBlock` of width ``w * 2**s`` (the first
    of scales 1, 2 halves the resolution: 28 -> 14 -> 7 for Fashion-MNIST). Every stage is one block (the stem goes
    with the first); the exits are ``head`` (:data:`~eenet.models.base.HEADS`: the paper's three-conv
    :class:`ExitHead` by default, one conv, or pool + linear), the last pool + linear. Input ``[B, in_channels, H, W]``.
    ``depth``: the plain network of the first ``depth`` blocks with that exit's head only
    (:func:`~eenet.models.base.single_exit`).
    """
    stages: list[nn.Module] = []
    chans: list[int] = []
    cin = width
    for s, n in enumerate(blocks):
        for b in range(n):
            block = BasicBlock(cin, width * 2**s, stride=2 if (s > 0 and b == 0) else 1)
            stages.append(nn.Sequential(_conv_bn_relu(in_channels, width), block) if not stages else block)
            cin = width * 2**s
            chans.append(cin)
    heads = [exit_head(head, c, num_classes, arch="resnet_6") for c in chans[:-1]] + [PoolLinearHead(chans[-1], num_classes)]
    return single_exit(stages, heads, num_classes, depth)


# --- DenseNet-BC (CIFAR) --------------------------------------------------------------------------


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (-> 4k) - BN-ReLU-conv3x3 (-> k); output concatenated to the input."""

    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
            nn.Conv2d(cin, 4 * growth, 1, bias=False),
            nn.BatchNorm2d(4 * growth),
            nn.ReLU(inplace=True),
            nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


def _transition(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, cout, 1, bias=False), nn.AvgPool2d(2))


@register_model()
def densenet121_4(
    *, num_classes: int = 100, in_channels: int = 3, growth: int = 12, blocks: Sequence[int] = (6, 12, 24, 16), compression: float = 0.5
) -> MultiExitNetwork:
    """The paper's CIFAR-100 network: DenseNet-BC, growth 12, blocks [6, 12, 24, 16], compression 0.5, 4 exits.

    Stage ``k < 3`` = dense block ``k`` + transition ``k`` (halves the resolution: 32 -> 16 -> 8 -> 4);
    exits after transitions 1-3 use :class:`ExitHead`, the final exit is BN-ReLU + pool + linear.
    Input ``[B, in_channels, 32, 32]``.
    """
    stages: list[nn.Module] = []
    heads: list[nn.Module] = []
    c = 2 * growth
    for s, n in enumerate(blocks):
        layers: list[nn.Module] = [nn.Conv2d(in_channels, c, 3, padding=1, bias=False)] if s == 0 else []
        for _ in range(n):
            layers.append(DenseLayer(c, growth))
            c += growth
        if s < len(blocks) - 1:
            cout = int(math.floor(c * compression))
            layers.append(_transition(c, cout))
            c = cout
            heads.append(ExitHead(c, num_classes))
        else:
            layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            heads.append(PoolLinearHead(c, num_classes))
        stages.append(nn.Sequential(*layers))
    return MultiExitNetwork(stages, heads, num_classes)
