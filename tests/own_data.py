"""Small datasets of your own, made on the fly in the formats a config can declare: an image folder of generated
images, tables of texts with string labels (CSV, parquet, JSON lines), a tiny BERT-like model directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ("circle", "square", "stripes")
WORDS = {
    "good": "great fine superb lovely bright warm".split(),
    "bad": "awful dull poor grim tired cold".split(),
    "meh": "plain okay average middling so so".split(),
}


def make_image_folder(
    root: Path, per_class: dict[str, int], size: int = 16, seed: int = 0, odd: dict[str, tuple[int, int]] | None = None
) -> Path:
    """``root/<part>/<class>/<i>.png`` for each ``part -> images per class``: three classes whose images differ in
    colour (so a network can learn them), with noise. ``odd``: ``"<part>/<class>/<i>" -> (width, height)``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    colours = {"circle": (200, 40, 40), "square": (40, 200, 40), "stripes": (40, 40, 200)}
    for part, n in per_class.items():
        for cls in CLASSES:
            folder = root / part / cls if part else root / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                w, h = (odd or {}).get(f"{part}/{cls}/{i}", (size, size))
                pixels = np.clip(np.array(colours[cls]) + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def make_texts(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` short texts and their string labels (good / bad / meh), each text made of its label's words."""
    rng = np.random.default_rng(seed)
    labels = [str(rng.choice(list(WORDS))) for _ in range(n)]
    texts = [" ".join(rng.choice(WORDS[y], size=int(rng.integers(3, 8)))) for y in labels]
    return texts, labels


def make_tiny_bert(root: Path, layers: int = 2, weights: bool = False, dropout: float = 0.1) -> Path:
    """A BERT-like model directory from a local config and a word-level vocabulary (no download); ``weights``: with
    the weights of a random initialisation saved as a pre-trained model's are; ``dropout``: of its layers."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted({w for ws in WORDS.values() for w in ws})]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(root / "vocab.txt")).save_pretrained(root)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
    )  # fmt: skip
    config.save_pretrained(root)
    if weights:
        import torch

        torch.manual_seed(0)
        BertModel(config).save_pretrained(root)
    return root
