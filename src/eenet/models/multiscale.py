"""MSDNet (Huang et al., ICLR 2018), the paper's ImageNet network.

Follows the authors' PyTorch code (kalviny/MSDNet-PyTorch) with its ImageNet defaults: 5 blocks, base 4,
step 4, 32 channels, growth 16, grFactor 1-2-4-4, bnFactor 1-2-4-4, prune "max", reduction 0.5,
bottlenecks on. Features are lists, one tensor per scale (finest first).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from eenet.models.base import MultiExitNetwork, register_model

__all__ = ["msdnet"]


def _conv_bn(cin: int, cout: int, down: bool, bottleneck: bool, bn_width: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    inner = cin
    if bottleneck:
        inner = min(cin, bn_width * cout)
        layers += [nn.Conv2d(cin, inner, 1, bias=False), nn.BatchNorm2d(inner), nn.ReLU(inplace=True)]
    layers += [nn.Conv2d(inner, cout, 3, stride=2 if down else 1, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class _ConvDownNormal(nn.Module):
    def __init__(self, cin_fine: int, cin: int, cout: int, bottleneck: bool, bn1: int, bn2: int) -> None:
        super().__init__()
        self.down = _conv_bn(cin_fine, cout // 2, True, bottleneck, bn1)
        self.normal = _conv_bn(cin, cout // 2, False, bottleneck, bn2)

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([x[1], self.down(x[0]), self.normal(x[1])], 1)


class _ConvNormal(nn.Module):
    def __init__(self, cin: int, cout: int, bottleneck: bool, bn: int) -> None:
        super().__init__()
        self.normal = _conv_bn(cin, cout, False, bottleneck, bn)

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([x[0], self.normal(x[0])], 1)


class _MSDFirstLayer(nn.Module):
    """ImageNet stem (conv7x7/2 + maxpool) then one strided conv per coarser scale: tensor -> list."""

    def __init__(self, cin: int, cout: int, gr: Sequence[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv2d(cin, cout * gr[0], 7, 2, 3, bias=False),
                    nn.BatchNorm2d(cout * gr[0]),
                    nn.ReLU(inplace=True),
                    nn.MaxPool2d(3, 2, 1),
                )
            ]
            + [
                nn.Sequential(
                    nn.Conv2d(cout * gr[i - 1], cout * gr[i], 3, 2, 1, bias=False), nn.BatchNorm2d(cout * gr[i]), nn.ReLU(inplace=True)
                )
                for i in range(1, len(gr))
            ]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out


class _MSDLayer(nn.Module):
    def __init__(self, cin: int, cout: int, gr: Sequence[int], bn: Sequence[int], in_scales: int, out_scales: int) -> None:
        super().__init__()
        n = len(gr)
        self.discard = in_scales - out_scales
        self.out_scales = out_scales
        offset = n - out_scales
        layers: list[nn.Module] = []
        if self.discard > 0:
            layers.append(_ConvDownNormal(cin * gr[offset - 1], cin * gr[offset], cout * gr[offset], True, bn[offset - 1], bn[offset]))
        else:
            layers.append(_ConvNormal(cin * gr[offset], cout * gr[offset], True, bn[offset]))
        for i in range(offset + 1, n):
            layers.append(_ConvDownNormal(cin * gr[i - 1], cin * gr[i], cout * gr[i], True, bn[i - 1], bn[i]))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.discard > 0:
            pairs = [[x[i - 1], x[i]] for i in range(1, self.out_scales + 1)]
        else:
            pairs = [[x[0]]] + [[x[i - 1], x[i]] for i in range(1, self.out_scales)]
        return [layer(p) for layer, p in zip(self.layers, pairs, strict=True)]


class _Parallel(nn.Module):
    def __init__(self, modules: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(modules)

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        return [m(t) for m, t in zip(self.branches, x, strict=True)]


class _MSDClassifier(nn.Module):
    """Two strided conv3x3 + avgpool on the coarsest scale, then linear: list -> ``[B, num_classes]``."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(channels, channels, 3, 2, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)),
            nn.Sequential(nn.Conv2d(channels, channels, 3, 2, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)),
            nn.AvgPool2d(2),
        )
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x[-1]), 1))


@register_model()
def msdnet(
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    blocks: int = 5,
    base: int = 4,
    step: int = 4,
    channels: int = 32,
    growth: int = 16,
    gr_factor: Sequence[int] = (1, 2, 4, 4),
    bn_factor: Sequence[int] = (1, 2, 4, 4),
    reduction: float = 0.5,
) -> MultiExitNetwork:
    """MSDNet for ImageNet (224x224 input), one exit per block: 5 exits by default.

    Stage ``k`` = block ``k`` (``base`` layers in the first block, ``step`` in each later one; prune
    "max": the finest scales are dropped progressively, with a compressing transition at each drop).
    Input ``[B, in_channels, 224, 224]``.
    """
    n_scales = len(gr_factor)
    steps = [base] + [step] * (blocks - 1)
    n_all = sum(steps)
    interval = math.ceil(n_all / n_scales)
    c = channels
    n_cur = 0
    stages: list[nn.Module] = []
    heads: list[nn.Module] = []
    for b in range(blocks):
        layers: list[nn.Module] = [_MSDFirstLayer(in_channels, c, gr_factor)] if b == 0 else []
        for _ in range(steps[b]):
            n_cur += 1
            in_scales = n_scales - math.floor(max(0, n_cur - 2) / interval)
            out_scales = n_scales - math.floor((n_cur - 1) / interval)
            layers.append(_MSDLayer(c, growth, gr_factor, bn_factor, in_scales, out_scales))
            c += growth
            if in_scales > out_scales and reduction > 0:
                offset = n_scales - out_scales
                cout = math.floor(reduction * c)
                layers.append(
                    _Parallel(
                        [
                            nn.Sequential(nn.Conv2d(c * gr_factor[offset + i], cout * gr_factor[offset + i], 1, bias=False),
                                          nn.BatchNorm2d(cout * gr_factor[offset + i]), nn.ReLU(inplace=True))
                            for i in range(out_scales)
                        ]
                    )
                )  # fmt: skip
                c = cout
        stages.append(nn.Sequential(*layers))
        heads.append(_MSDClassifier(c * gr_factor[-1], num_classes))
    return MultiExitNetwork(stages, heads, num_classes)
