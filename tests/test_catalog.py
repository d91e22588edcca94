"""The catalog (eenet.catalog: datasets, architectures, policies) against the code that implements it and the config
schema that documents it: the schema's enums and defaults are the registries' and the code's, every architecture reads
what the catalog says it reads, every policy is drawn with the label and style the catalog gives it."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def _schema() -> dict:
    return yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())


def _bench_props() -> dict:
    return _schema()["properties"]["benchmarks"]["additionalProperties"]["properties"]


def test_schema_enums_are_the_registries():
    from eenet.catalog import ARCHITECTURES, BUILTIN_DATASETS, DATASET_DEFAULTS, DATASET_KINDS, resolve_datasets
    from eenet.catalog import METHODS as DECLARED
    from eenet.data import DATASETS, DatasetSpec
    from eenet.models import MODELS
    from eenet.schedulers import METHODS

    props = _bench_props()
    # every built-in dataset, as the data code holds it, turns into what the manifest writes and back unchanged
    for name, spec in DATASETS.items():
        entry = {k: v for k, v in spec.to_json().items() if k != "name"}
        assert DatasetSpec.from_entry(name, entry) == spec and spec.builtin and spec.kind == BUILTIN_DATASETS[name]["kind"]
    for name in BUILTIN_DATASETS:  # the schema lists the built-in datasets where it describes `dataset`
        assert name in props["dataset"]["description"] and name in _schema()["properties"]["datasets"]["description"]
    dataset_keys = _schema()["properties"]["datasets"]["additionalProperties"]["properties"]
    assert dataset_keys["kind"]["enum"] == list(DATASET_KINDS)
    # every key a config can set is a field of DatasetSpec with a default in the catalog (kind: required of new ones)
    spec_fields = {f.name for f in dataclasses.fields(DatasetSpec)}
    assert set(dataset_keys) - {"kind"} == set(DATASET_DEFAULTS) - {"num_classes", "in_channels"} and set(DATASET_DEFAULTS) <= spec_fields
    # a dataset of the user's with only the keys it must have is, after the config's merge, the spec the code builds
    # with the same keys: the defaults a config gets are the data code's own
    mine = resolve_datasets({"mine": {"kind": "imagefolder", "path": "/data/mine"}})["mine"]
    assert DatasetSpec.from_entry("mine", mine) == DatasetSpec("mine", kind="imagefolder", path="/data/mine")
    for key, prop in dataset_keys.items():  # where the schema states a default, it is the catalog's
        assert "default" not in prop or prop["default"] == DATASET_DEFAULTS[key], key
    # architectures: the catalog's list, each with its builder (what each reads: the tests below), and the schema's enum
    assert set(props["arch"]["anyOf"][0]["enum"]) == set(MODELS) == set(ARCHITECTURES)
    # methods: the catalog's list, each with a scheduler class (its label and style on a figure: the tests below)
    assert set(METHODS) == set(DECLARED)
    assert {DECLARED[m]["config"] for m in DECLARED} <= {None, *props}  # each names a block of the benchmark config
    # `static` is not configured: plot_curve adds a point per single exit by itself
    assert set(props["methods"]["items"]["enum"]) == set(METHODS) - {"static"}
    assert set(props["methods"]["default"]) == set(METHODS) - {"static"}


# The builder arguments of every registered architecture that make it tiny (no download: text models are built from
# their config, without weights), and the side of the images an image model is given.
TINY = {
    "small_cnn_3": ({"width": 4}, 28),
    "resnet_6": ({"width": 4}, 28),
    "resnet56_3": ({"blocks": (1, 1, 1), "width": 4}, 32),
    "densenet121_4": ({"growth": 4, "blocks": (1, 1, 1, 1)}, 32),
    "msdnet": ({"blocks": 2, "base": 1, "step": 1, "channels": 4, "growth": 4}, 224),
    "bert_4": ({"random_init": True, "num_hidden_layers": 1, "exit_layers": [1]}, None),
    "minilm_3": ({"random_init": True, "num_hidden_layers": 1, "exit_layers": [1]}, None),
    "minilm_6": ({"random_init": True, "num_hidden_layers": 1, "exit_layers": [1]}, None),
}


def _reads(model: Any, x: Any) -> bool:
    """Whether ``model`` computes logits ``[2, 3]`` at every exit from the batch ``x``."""
    import torch

    try:
        with torch.inference_mode():
            out = model(x)
    except (TypeError, AttributeError, RuntimeError, ValueError, IndexError):
        return False
    return len(out) == model.num_exits and all(tuple(z.shape) == (2, 3) for z in out)


def test_every_architecture_reads_what_the_catalog_says_it_reads(tmp_path):
    """Each registered architecture and backbone family, built tiny through build_model as a run builds it: a text
    model (is_text_model) takes token ids and an attention mask and no images; an image model takes images
    ``[B, C, H, W]`` of the dataset's channels (build_model passes ``in_channels`` to image models only; 2 here,
    which no builder defaults to) and no token ids."""
    import torch
    from helpers import make_tiny_bert

    from eenet.models import MODELS, build_model, is_text_model

    assert set(TINY) == set(MODELS), "give a new architecture its tiny arguments in TINY"
    tokens = {
        "input_ids": torch.tensor([[2, 7, 8, 3, 0], [2, 9, 3, 0, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]]),
    }
    archs = {a: (kwargs, side, 2) for a, (kwargs, side) in TINY.items()}
    archs["torchvision:resnet18"] = ({"exits": ["layer1", "layer2"], "check_size": 32}, 32, 3)
    bert = make_tiny_bert(tmp_path / "bert", layers=2)
    archs[f"huggingface:{bert}"] = ({"exit_layers": [1, 2], "random_init": True}, None, 3)
    torch.manual_seed(0)
    for arch, (kwargs, side, channels) in archs.items():
        model = build_model(arch, 3, channels, **kwargs).eval()
        images = torch.randn(2, channels, side or 32, side or 32)
        if is_text_model(arch):
            assert _reads(model, tokens) and not _reads(model, images), f"{arch} is declared a text model"
        else:
            assert _reads(model, images) and not _reads(model, tokens), f"{arch} is declared an image model"
            wrong = torch.randn(2, channels + 1, side, side)
            assert not _reads(model, wrong), f"{arch} does not read the {channels} channels it was built for"


def test_every_policy_is_drawn_with_its_catalog_label_and_style(tmp_path, monkeypatch):
    """plot_curve of rows of every configurable policy (one combined with a combiner) and the single exits: each is
    a legend entry with the label eenet.catalog gives it, on a line of the catalog's colour and marker."""
    from matplotlib.colors import to_rgba

    import eenet.analysis.plotting as plotting
    from eenet.catalog import COMBINERS, compose_method
    from eenet.catalog import METHODS as DECLARED

    figures = []
    monkeypatch.setattr(plotting, "save_figure", lambda fig, paths: figures.append(fig))
    policies = [m for m in DECLARED if m != "static"]
    combiner = next(iter(COMBINERS))
    rows = [{"method": m, "test_cost_ms": c, "test_accuracy": a} for m in [*policies, compose_method(combiner, "maxpred")]
            for c, a in ((1.0, 0.8), (2.0, 0.9))]  # fmt: skip
    rows += [{"method": f"static_exit{k}", "test_cost_ms": 1.0 + k, "test_accuracy": 0.7 + 0.1 * k} for k in range(2)]
    plotting.plot_curve(rows, "t", "c", [str(tmp_path / "curve.png")])
    (ax,) = figures[0].axes
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    lines = {line.get_label(): line for line in ax.get_lines()}
    for m in policies:
        label, style = DECLARED[m]["label"], DECLARED[m]["style"]
        assert label in legend and label in lines, m
        assert to_rgba(lines[label].get_color()) == to_rgba(style["color"]) and lines[label].get_marker() == style["marker"], m
    combined = f"{COMBINERS[combiner]['label']} + {DECLARED['maxpred']['label']}"
    assert combined in legend and lines[combined].get_linestyle() == "--"
    assert "single exits" in legend
    assert len(legend) == len(policies) + 2


def test_schema_defaults_are_the_code_defaults():
    from eenet.schedulers import EENetScheduler
    from eenet.training.loop import TrainConfig

    props = _bench_props()
    train = {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory()) for f in dataclasses.fields(TrainConfig)}
    schema_train = {k: v["default"] for k, v in props["train"]["properties"].items()}
    assert schema_train == train
    eenet = {k: p.default for k, p in inspect.signature(EENetScheduler.__init__).parameters.items() if k != "self"}
    schema_eenet = {k: v["default"] for k, v in props["eenet"]["properties"].items()}
    # the seed is the benchmark's scheduler_seed, given to every scheduler that takes one
    assert schema_eenet == {k: v for k, v in eenet.items() if k != "seed"}
    assert props["scheduler_seed"]["default"] == eenet["seed"]
