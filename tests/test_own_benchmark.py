"""Your own benchmark by configuration alone: the whole chain to curve.pdf for an image folder with a torchvision
ResNet-18 and for a table of texts with a tiny BERT-like model from a local directory; wrong inputs stop before any
job; the built-in benchmarks plan the jobs they planned before datasets and backbones came from the config."""

from __future__ import annotations

import csv
import json
import re
import shlex
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import CLASSES, REPO, copy_workflow, documented, make_image_folder, make_texts, make_tiny_bert, snakemake

TARGETS = ["results/shapes/curve.pdf", "results/reviews/curve.pdf"]
# the README's examples, run small: a few images and texts, two epochs, short timing (merged over them)
SMALL = {
    "device": "cpu",
    "profile": {"batch_size": 4, "samples": 24, "warmup": 1, "repeats": 3, "max_spread": 100},
    "runtime": {"samples": 24, "batch_size": 8, "repeats": 3},
    "budgets": {"unit": "fraction", "values": [0.6, 0.9]},
    "methods": ["eenet", "maxpred", "oracle"],  # a learned policy, a threshold, the bound (the tiny run fits the rest)
    "eenet": {"lr": 0.01, "epochs": 20, "patience": 10, "restarts": 2},
}
SMALLER = {
    "shapes": {
        **SMALL,
        "split": {"val_size": 15, "seed": 0},
        "train": {"epochs": 2, "batch_size": 16, "milestones": [], "eval_batch_size": 32},
        # the decisions untimed here (nothing below reads them); the reviews' text model and the tiny run time them
        "profile": {**SMALL["profile"], "decision_costs": False},
    },
    "reviews": {
        **SMALL,
        "max_length": 16,
        "split": {"val_size": 30, "seed": 0},
        "train": {"lr": 1.0e-3, "epochs": 2, "batch_size": 16, "eval_batch_size": 32},
    },
}


def readme_example(name: str) -> str:
    """The README's YAML block that starts with ``# <name>``."""
    text = (REPO / "README.md").read_text()
    return re.search(rf"```yaml\n(# {re.escape(name)}.*?)```", text, re.S).group(1)


def merge(base: dict, over: dict) -> dict:
    """``over`` merged into ``base`` key by key, as Snakemake merges config files."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def make_own_inputs(tmp: Path) -> None:
    """The data and the model the README's two examples read, made in ``tmp``: an image folder, a table of texts
    (CSV and parquet), a tiny BERT."""
    make_image_folder(tmp / "shapes", {"train": 20, "test": 8}, size=16)
    texts, labels = make_texts(160, seed=1)
    (tmp / "reviews").mkdir()
    pd.DataFrame({"review": texts[:120], "mood": labels[:120]}).to_csv(tmp / "reviews" / "train.csv", index=False)
    pd.DataFrame({"review": texts[120:], "mood": labels[120:]}).to_parquet(tmp / "reviews" / "test.parquet")
    make_tiny_bert(tmp / "tiny-bert", layers=2, weights=True)


def own_files(tmp: Path) -> dict[str, str]:
    """The README's two examples with their placeholders pointing at the inputs in ``tmp`` (:func:`make_own_inputs`),
    and the small settings: file name -> YAML text."""
    places = {"/data/shapes": str(tmp / "shapes"), "/data/reviews": str(tmp / "reviews"), "/models/tiny-bert": str(tmp / "tiny-bert")}
    files = {}
    for name in ("my_images.yaml", "my_texts.yaml"):
        text = readme_example(name)
        for placeholder, path in places.items():
            text = text.replace(placeholder, path)
        files[name] = text
    files["small_images.yaml"] = yaml.safe_dump({"benchmarks": {"shapes": SMALLER["shapes"]}})
    files["small_texts.yaml"] = yaml.safe_dump({"benchmarks": {"reviews": SMALLER["reviews"]}})
    return files


def own_config(tmp: Path) -> dict:
    """The two examples and the small settings as one config (what Snakemake makes of the three files)."""
    cfg: dict = {}
    for text in own_files(tmp).values():
        cfg = merge(cfg, yaml.safe_load(text))
    return cfg


@pytest.fixture(scope="module")
def own_inputs(tmp_path_factory) -> Path:
    """The examples' inputs, made once for the module: each test that changes them takes a copy."""
    tmp = tmp_path_factory.mktemp("own-inputs")
    make_own_inputs(tmp)
    return tmp


@pytest.fixture(scope="module")
def own_run(own_inputs, tmp_path_factory) -> tuple[Path, dict]:
    """The README's commands for its two examples, with the small settings merged in (a third config file)."""
    tmp = tmp_path_factory.mktemp("own")
    wd = copy_workflow(tmp / "wf", extra=("config",))
    for name, text in own_files(own_inputs).items():
        (wd / name).write_text(text)
    for command in (
        documented(".venv/bin/snakemake --cores 8 results/shapes/curve.pdf --configfile my_images.yaml"),
        documented(".venv/bin/snakemake --cores 8 results/reviews/curve.pdf --configfile my_texts.yaml"),
    ):
        argv = shlex.split(command)  # .venv/bin/snakemake --cores 8 <target> --configfile <example>
        i = argv.index("--configfile")
        target, example = argv[i - 1], argv[i + 1]
        assert argv[1:3] == ["--cores", "8"] and target in TARGETS
        # as written, through this Python's Snakemake on the test machine's 2 cores (helpers.snakemake), with the
        # examples' figure and the small settings (a second config file) added
        snakemake(wd, *argv[3:i], target.replace("curve.pdf", "examples.pdf"), *argv[i:], example.replace("my_", "small_"))
    return wd, {}


def test_image_folder_and_torchvision_resnet18_run_to_the_curve(own_run):
    wd, _ = own_run
    manifest = json.loads((wd / "data" / "shapes" / "manifest.json").read_text())
    assert manifest["spec"]["classes"] == list(CLASSES) and manifest["spec"]["image_size"] == 16 and len(manifest["spec"]["mean"]) == 3
    assert (wd / "results" / "shapes" / "curve.pdf").stat().st_size > 0
    rows = list(csv.DictReader(open(wd / "results" / "shapes" / "summary.csv", newline="")))
    assert {r["method"] for r in rows} >= {"eenet", "maxpred", "oracle"}
    costs = list(csv.DictReader(open(wd / "results" / "shapes" / "cost.csv", newline="")))
    assert len(costs) == 4  # an exit after each of layer1..layer4
    assert (wd / "results" / "shapes" / "examples.pdf").stat().st_size > 0
    log = (wd / "logs" / "shapes" / "train_multiexit.log").read_text()
    assert "training torchvision:resnet18 on shapes: 45 train / 15 val samples, 4 exits" in log


def test_text_table_and_local_bert_run_to_the_curve(own_run):
    wd, _ = own_run
    manifest = json.loads((wd / "data" / "reviews" / "manifest.json").read_text())
    assert manifest["spec"]["classes"] == ["bad", "good", "meh"]
    assert (wd / "results" / "reviews" / "curve.pdf").stat().st_size > 0
    examples = list(csv.DictReader(open(wd / "results" / "reviews" / "examples.csv", newline="")))
    assert examples and all(r["text"] for r in examples)  # the sentences themselves, from the table
    costs = list(csv.DictReader(open(wd / "results" / "reviews" / "cost.csv", newline="")))
    assert len(costs) == 2


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda tmp, cfg: (Path(cfg["datasets"]["shapes"]["path"]) / "test" / "circle").mkdir(exist_ok=True)
         or [f.unlink() for f in (Path(cfg["datasets"]["shapes"]["path"]) / "test" / "circle").iterdir()],
         r"class folder .*test/circle has no images"),
        (lambda tmp, cfg: cfg["datasets"]["reviews"].update(classes=["bad", "good"]),
         r"label 'meh' is not one of the declared classes \['bad', 'good'\] \(datasets.reviews.classes\)"),
        (lambda tmp, cfg: cfg["benchmarks"]["shapes"]["arch_kwargs"].update(exits=["layer1", "layer9"]),
         r"no module 'layer9' to put an exit after \(arch_kwargs.exits\); valid: conv1, bn1"),
        (lambda tmp, cfg: make_image_folder(Path(cfg["datasets"]["shapes"]["path"]), {"train": 1}, size=20, seed=5),
         r"datasets.shapes: images of different or non-square sizes .* 20x20, .* 16x16\); set datasets.shapes.transform: resize"),
    ],
    ids=["empty-class-folder", "label-outside-classes", "no-such-exit", "mixed-image-sizes"],
)  # fmt: skip
def test_wrong_inputs_stop_before_any_job(own_inputs, tmp_path, break_it, message):
    shutil.copytree(own_inputs, tmp_path / "inputs")
    cfg = own_config(tmp_path / "inputs")
    break_it(tmp_path, cfg)
    wd = copy_workflow(tmp_path / "wf", yaml.safe_dump(cfg))
    proc = snakemake(wd, *TARGETS, check=False)
    assert proc.returncode != 0
    assert re.search(message, proc.stdout + proc.stderr), proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not (wd / "data").exists() and not (wd / "results").exists()  # no job ran


def test_built_in_benchmarks_plan_the_jobs_they_planned_before():
    """The job list of `snakemake all` on config/config.yaml (rule and outputs of every job) is the one recorded before
    the built-in datasets became entries of the config's registry (tests/config/planned_jobs.txt)."""
    from eenet.pipeline.dvc import workflow_jobs

    jobs = sorted(" ".join([j["rule"], *j["output"]]) for j in workflow_jobs(["all"], workdir=REPO, snakefile=REPO / "Snakefile"))
    before = sorted(line.rstrip("\n") for line in open(REPO / "tests" / "config" / "planned_jobs.txt") if not line.startswith("#"))
    assert len(jobs) == len(before) == 1240
    assert jobs == before
