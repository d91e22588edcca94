"""Multi-exit networks: the base network and heads, the registry, and one module per family.

Importing the package registers every architecture: ``small_cnn_3``, ``resnet56_3``, ``densenet121_4``
(:mod:`.cnn`), ``msdnet`` (:mod:`.multiscale`), ``bert_4``, ``minilm_3`` (:mod:`.transformer`), and the
backbones named in the config, ``torchvision:<name>`` and ``huggingface:<dir or hub id>`` (:mod:`.backbones`).
"""

from eenet.models import backbones, cnn, multiscale, transformer
from eenet.models.backbones import ClassTokenHead, exit_points, huggingface_multiexit, torchvision_multiexit
from eenet.models.base import (
    FAMILIES,
    HEADS,
    MODELS,
    ConvLinearHead,
    ExitHead,
    ModelEntry,
    MultiExitNetwork,
    PoolLinearHead,
    build_model,
    exit_head,
    is_text_model,
    load_model,
    prepare_model,
    register_family,
    register_model,
    save_model,
    select_samples,
)
from eenet.models.cnn import densenet121_4, resnet56_3, small_cnn_3
from eenet.models.multiscale import msdnet
from eenet.models.transformer import PoolerHead, TransformerMultiExit, bert_4, minilm_3, pretrained_path, text_tokenizer

__all__ = [
    "MODELS",
    "FAMILIES",
    "ClassTokenHead",
    "exit_points",
    "huggingface_multiexit",
    "torchvision_multiexit",
    "register_family",
    "backbones",
    "ExitHead",
    "ConvLinearHead",
    "HEADS",
    "exit_head",
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
