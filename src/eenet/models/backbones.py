"""Backbones named in the config: any torchvision classification model, any Hugging Face encoder, with exits where
the config says.

``torchvision:<name>`` (``arch_kwargs``: ``exits``, ``head``, ``weights``, ``kwargs``): the model is built by
``torchvision.models.get_model`` and cut into a chain of its modules; an exit head reads the output of each module
named in ``exits`` (dotted paths, e.g. ``layer2`` or ``features.6``; a path inside a ``nn.Sequential`` cuts it
open). The modules after the last exit (pooling, classifier) are dropped. A Vision Transformer is cut after its
encoder layers (``encoder.layers.encoder_layer_5``) and its exits read the class token. When built, the chain is
checked against the model's own ``forward`` on a random input: a model whose forward is not the chain of its
modules (up to the last exit) is refused with the reason.

``huggingface:<local dir or hub id>`` (``arch_kwargs``: ``exit_layers``, ``pooling``, ``random_init``,
``num_hidden_layers``, ``dropout``): a BERT-like encoder cut after the layers ``exit_layers``
(:func:`eenet.models.transformer.transformer_multiexit`).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from eenet.models.base import HEADS, MultiExitNetwork, PoolLinearHead, exit_head, register_family
from eenet.models.transformer import TransformerMultiExit, transformer_multiexit

__all__ = [
    "ClassTokenHead", "exit_points", "torchvision_multiexit", "huggingface_multiexit", "check_torchvision", "check_huggingface",
    "check_backbone",
]  # fmt: skip


class ClassTokenHead(nn.Module):
    """A Vision Transformer's exit: layer norm and linear on the class token. ``[B, L, D]`` -> ``[B, num_classes]``."""

    def __init__(self, hidden: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden, eps=1e-6)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x[:, 0]))


class _ViTInput(nn.Module):
    """What a torchvision Vision Transformer does before its encoder layers: patches, class token, position embedding."""

    def __init__(self, vit: nn.Module) -> None:
        super().__init__()
        self.conv_proj, self.class_token = vit.conv_proj, vit.class_token
        self.pos_embedding, self.dropout = vit.encoder.pos_embedding, vit.encoder.dropout
        self.patch_size, self.image_size = vit.patch_size, vit.image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if h != self.image_size or w != self.image_size:
            raise ValueError(f"this Vision Transformer reads {self.image_size}x{self.image_size} images, got {h}x{w}")
        x = self.conv_proj(x).reshape(n, self.conv_proj.out_channels, -1).permute(0, 2, 1)  # [B, patches, D]
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
        return self.dropout(x + self.pos_embedding)


def _is_vit(model: nn.Module) -> bool:
    from torchvision.models import VisionTransformer

    return isinstance(model, VisionTransformer)


def _chain(model: nn.Module, exits: Sequence[str] = ()) -> list[tuple[str, nn.Module]]:
    """The model as a chain of ``(dotted name, module)``: its children, each ``nn.Sequential`` that holds an exit
    opened into its children, level by level, as far as the exits need (a ViT: its input step, then its layers)."""
    if _is_vit(model):
        return [("input", _ViTInput(model))] + [(f"encoder.layers.{n}", m) for n, m in model.encoder.layers.named_children()]
    items = list(model.named_children())
    for e in exits:
        while True:
            i = next((j for j, (n, _) in enumerate(items) if e == n or e.startswith(n + ".")), None)
            if i is None:
                break  # reported by the caller with the valid names
            name, module = items[i]
            if name == e:
                break
            if not isinstance(module, nn.Sequential):
                raise ValueError(f"cannot put an exit inside {name!r} ({type(module).__name__}: not a sequence of modules)")
            items[i : i + 1] = [(f"{name}.{c}", m) for c, m in module.named_children()]
    return items


def exit_points(model: nn.Module, depth: int = 2) -> list[str]:
    """The module names an exit can follow: the chain's names, ``nn.Sequential`` children opened ``depth`` levels."""
    if _is_vit(model):
        return [n for n, _ in _chain(model)[1:]]
    out: list[str] = []

    def walk(prefix: str, module: nn.Module, level: int) -> None:
        for n, m in module.named_children():
            name = f"{prefix}{n}"
            out.append(name)
            if isinstance(m, nn.Sequential) and level < depth:
                walk(name + ".", m, level + 1)

    walk("", model, 0)
    return out


def _check_reads(arch: str, in_channels: int, head: str) -> None:
    """A torchvision backbone reads RGB images, through one of :data:`HEADS`."""
    if in_channels != 3:
        raise ValueError(f"{arch} reads RGB images (3 channels); this dataset's images have {in_channels}")
    if head not in HEADS:
        raise ValueError(f"{arch}: arch_kwargs.head must be one of {', '.join(HEADS)}, got {head!r}")


def _torchvision_model(name: str, kwargs: dict[str, Any] | None) -> nn.Module:
    import torchvision.models

    available = torchvision.models.list_models(torchvision.models)
    if name not in available:
        close = difflib.get_close_matches(name, available, n=8, cutoff=0.5) or available[:20]
        raise ValueError(f"torchvision has no classification model {name!r}; e.g. {', '.join(close)}")
    return torchvision.models.get_model(name, weights=None, **(kwargs or {}))


def _stages(model: nn.Module, exits: Sequence[str], arch: str) -> list[nn.Module]:
    """The chain cut after each exit: ``len(exits)`` modules (what runs from one exit to the next)."""
    if not exits:
        raise ValueError(f"{arch}: arch_kwargs.exits names no module; valid: {', '.join(exit_points(model))}")
    items = _chain(model, exits)
    names = [n for n, _ in items]
    positions = []
    for e in exits:
        inside = [j for j, n in enumerate(names) if n == e or n.startswith(e + ".")]  # a container opened for an earlier exit
        if not inside:
            raise ValueError(f"{arch}: no module {e!r} to put an exit after (arch_kwargs.exits); valid: {', '.join(exit_points(model))}")
        positions.append(inside[-1])
    if positions != sorted(set(positions)):
        raise ValueError(f"{arch}: arch_kwargs.exits must follow the order the modules run in: {', '.join(names)}")
    bounds = [-1, *positions]
    return [nn.Sequential(*(m for _, m in items[a + 1 : b + 1])) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _verify(model: nn.Module, stages: list[nn.Module], exits: Sequence[str], x: torch.Tensor, arch: str) -> list[torch.Tensor]:
    """Run the model's own forward with hooks on the exit modules, and the chain of stages, on ``x``; they must agree.
    Returns the chain's outputs at the exits (their shapes size the heads)."""
    seen: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())

    def keep(name: str):  # a forward hook that returns nothing (a returned value would replace the module's output)
        def hook(_module: nn.Module, _inputs: Any, out: torch.Tensor) -> None:
            seen.setdefault(name, out.detach().clone())

        return hook

    hooks = [modules[e].register_forward_hook(keep(e)) for e in exits]
    outs: list[torch.Tensor] = []
    try:
        with torch.no_grad():
            model(x)
            h = x
            for stage in stages:
                h = stage(h)
                outs.append(h)
    except RuntimeError as exc:  # the chain broke where the forward does something between modules (a flatten, ...)
        outs.append(torch.empty(0))
        log_reason = str(exc).splitlines()[0]
    else:
        log_reason = "outputs differ"
    finally:
        for hook in hooks:
            hook.remove()
    for e, out in zip(exits, outs, strict=False):
        if e not in seen or seen[e].shape != out.shape or not torch.allclose(seen[e], out, rtol=1e-4, atol=1e-4):
            raise ValueError(
                f"{arch}: its forward is not the chain of its modules up to {e!r} ({log_reason}: it computes something "
                f"between them), so an exit there would not see what the model computes; choose other exits (earlier "
                f"ones), or register a builder for this model"
            )
    return outs


def torchvision_multiexit(
    name: str,
    *,
    num_classes: int,
    in_channels: int = 3,
    exits: Sequence[str],
    head: str = "pool_linear",
    weights: str | None = None,
    kwargs: dict[str, Any] | None = None,
    check_size: int = 64,
) -> MultiExitNetwork:
    """``torchvision.models.get_model(name, **kwargs)`` with an exit after each module of ``exits``.

    ``head``: the intermediate exits' head on feature maps (:data:`~eenet.models.base.HEADS`: ``pool_linear``, global
    average pool + linear, the default; ``conv_linear``, one conv first; ``paper``, the paper's
    :class:`~eenet.models.base.ExitHead`); the last exit is pool + linear. A Vision Transformer's exits read the class token
    (:class:`ClassTokenHead`). ``weights``: a local state dict of the torchvision model (e.g. ImageNet weights saved
    with ``torch.save(model.state_dict(), path)``), loaded before the model is cut. ``check_size``: the side of the
    random images the chain is checked on (a ViT uses its own image size).
    """
    arch = f"torchvision:{name}"
    _check_reads(arch, in_channels, head)
    model = _torchvision_model(name, kwargs)
    if weights:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"{arch}: arch_kwargs.weights {weights} are not weights of this model ({str(exc).splitlines()[0]})") from exc
    model.eval()
    stages = _stages(model, list(exits), arch)
    size = model.image_size if _is_vit(model) else check_size
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    outs = _verify(model, stages, list(exits), x, arch)
    heads: list[nn.Module] = []
    for k, out in enumerate(outs):
        last = k == len(outs) - 1
        if out.dim() == 3:
            heads.append(ClassTokenHead(out.shape[-1], num_classes))
        elif out.dim() == 2:
            heads.append(nn.Linear(out.shape[1], num_classes))
        elif not last:
            heads.append(exit_head(head, out.shape[1], num_classes, arch=arch))
        else:
            heads.append(PoolLinearHead(out.shape[1], num_classes))
    if _is_vit(model) and weights and exits[-1] == exit_points(model)[-1]:
        heads[-1].norm.load_state_dict(model.encoder.ln.state_dict())  # the last exit reads what the model's classifier read
    net = MultiExitNetwork(stages, heads, num_classes)
    net.channels_last_on_cuda = not _is_vit(model)
    return net.train()


def huggingface_multiexit(
    location: str,
    *,
    num_classes: int,
    exit_layers: Sequence[int],
    pooling: str = "cls",
    random_init: bool = False,
    num_hidden_layers: int | None = None,
    dropout: float = 0.1,
) -> TransformerMultiExit:
    """A Hugging Face encoder (local directory or hub id) with exits after ``exit_layers`` (1-based, increasing, the
    last one the last layer kept); ``random_init`` builds it from its ``config.json`` without weights."""
    return transformer_multiexit(num_classes, location, exit_layers, num_hidden_layers, dropout, random_init, pooling)


register_family("torchvision", torchvision_multiexit)
register_family("huggingface", huggingface_multiexit, weights_from_name=True)


def check_torchvision(name: str, *, in_channels: int = 3, exits: Sequence[str] = (), **kwargs: Any) -> None:
    """Before any job: the model exists, the exits are modules it runs in that order, it reads what the dataset holds.
    Built on the meta device (no memory, no weights read); the check against its forward runs when it is built."""
    arch = f"torchvision:{name}"
    _check_reads(arch, in_channels, kwargs.get("head", "pool_linear"))
    weights = kwargs.get("weights")
    if weights and not Path(weights).is_file():
        raise FileNotFoundError(f"{arch}: arch_kwargs.weights {weights} does not exist")
    with torch.device("meta"):
        model = _torchvision_model(name, kwargs.get("kwargs"))
    _stages(model, list(exits), arch)


def check_huggingface(location: str, *, exit_layers: Sequence[int] = (), num_hidden_layers: int | None = None, **_: Any) -> None:
    """Before any job: a local model directory has a config.json, and the exit layers are layers of it."""
    path = Path(location)
    if not path.exists():
        if location.startswith(("/", ".")):
            raise FileNotFoundError(f"huggingface:{location}: no such directory (a local model directory with config.json, or a hub id)")
        return  # a hub id: checked when it is loaded
    config = path / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"huggingface:{location}: {config} is missing (save the model with save_pretrained)")
    layers = num_hidden_layers or json.loads(config.read_text()).get("num_hidden_layers")
    cuts = list(exit_layers)
    if not cuts or cuts != sorted(set(cuts)) or cuts[0] < 1 or (layers and cuts[-1] != layers):
        raise ValueError(
            f"huggingface:{location}: arch_kwargs.exit_layers must increase from >= 1 to the last layer ({layers}), got {cuts}"
        )


def check_backbone(arch: str, arch_kwargs: dict[str, Any], in_channels: int) -> None:
    """Before any job (the Snakefile calls it while planning): a ``torchvision:`` backbone exists and has the exit
    modules named, in order (the error lists the valid ones); a ``huggingface:`` one the exit layers named.
    Registered builders need no check."""
    family, _, name = arch.partition(":")
    if family == "torchvision":
        check_torchvision(name, in_channels=in_channels, **arch_kwargs)
    elif family == "huggingface":
        check_huggingface(name, **arch_kwargs)
