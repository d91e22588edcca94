# Helpers shared by the rules: config validation, paths, the package files each rule depends on.

import os
import sys
from pathlib import Path

from snakemake.utils import validate


validate(config, schema="../workflow/schemas/config.schema.yaml")

BENCHMARKS = config["benchmarks"]
REPO = Path(workflow.basedir)
PACKAGE = REPO / "src" / "eenet"
ENV = "../envs/pipeline.yaml"

# The scripts import the package; make it importable without an install (e.g. under --sdm conda).
sys.path.insert(0, str(REPO / "src"))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))


wildcard_constraints:
    bench="|".join(BENCHMARKS),
    dataset="|".join(config["datasets"]),
    method="[a-z]+",
    budget=r"[0-9]+(\.[0-9]+)?",


def code(script, *modules):
    """The script and the package modules a rule runs, as inputs: editing one re-runs that rule.

    Paths are relative to the working directory when the repository is below it, absolute otherwise.
    """
    files = [REPO / "workflow" / "scripts" / script] + [PACKAGE / f"{m}.py" for m in ("__init__",) + modules]
    return [os.path.relpath(f) if not os.path.relpath(f).startswith("..") else str(f) for f in files]


def bench(wildcards):
    return BENCHMARKS[wildcards.bench]


def dataset_manifest(wildcards):
    """The manifest download_dataset writes once a benchmark's raw files are verified."""
    return f"data/{bench(wildcards)['dataset']}/manifest.json"


def budget_names(name):
    """Budget values of a benchmark, as they appear in file names."""
    return [str(v) for v in BENCHMARKS[name]["budgets"]["values"]]


def eval_files(wildcards):
    cfg = BENCHMARKS[wildcards.bench]
    return expand(
        "results/{bench}/eval/{method}/{budget}.json",
        bench=wildcards.bench,
        method=cfg["methods"],
        budget=budget_names(wildcards.bench),
    )


def method_params(wildcards):
    """Hyper-parameters of a method from the benchmark's config (only eenet has any)."""
    return dict(bench(wildcards).get(wildcards.method, {})) if wildcards.method == "eenet" else {}


def all_curves():
    return expand("results/{bench}/curve.pdf", bench=BENCHMARKS)
