"""Multi-exit networks: the base network and heads, the registry, and one module per family.

Importing the package registers every architecture: ``small_cnn_3``, ``resnet56_3``, ``densenet121_4``
(:mod:`.cnn`), ``msdnet`` (:mod:`.multiscale`), ``bert_4``, ``minilm_3`` (:mod:`.transformer`).
"""

from . import cnn, multiscale, transformer
from .base import (
    MODELS,
    ExitHead,
    ModelEntry,
    MultiExitNetwork,
    PoolLinearHead,
    build_model,
    is_text_model,
    load_model,
    prepare_model,
    register_model,
    save_model,
    select_samples,
)
from .cnn import densenet121_4, resnet56_3, small_cnn_3
from .multiscale import msdnet
from .transformer import PoolerHead, TransformerMultiExit, bert_4, minilm_3, pretrained_path, text_tokenizer

__all__ = [
    "MODELS",
    "ExitHead",
    "ModelEntry",
    "MultiExitNetwork",
    "PoolLinearHead",
    "PoolerHead",
    "TransformerMultiExit",
    "build_model",
    "is_text_model",
    "load_model",
    "prepare_model",
    "register_model",
    "save_model",
    "select_samples",
    "small_cnn_3",
    "resnet56_3",
    "densenet121_4",
    "msdnet",
    "bert_4",
    "minilm_3",
    "pretrained_path",
    "text_tokenizer",
    "cnn",
    "multiscale",
    "transformer",
]
