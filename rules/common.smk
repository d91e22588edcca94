# Helpers shared by the rules (config validation, paths, the code each step depends on).

import os
import sys
from pathlib import Path

from snakemake.utils import validate


validate(config, schema="../workflow/schemas/config.schema.yaml")



def canonical(value):
    """The same value with every mapping's keys sorted, so that params compare equal whatever the key order in the YAML."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


BENCHMARKS = canonical(config["benchmarks"])
REPO = Path(workflow.basedir)
PACKAGE = REPO / "src" / "eenet"
ENV = "../envs/pipeline.yaml"

# The workflow imports the package (dataset registry); make it importable without an install.
sys.path.insert(0, str(REPO / "src"))


def code(script, *modules):
    """Inputs naming the code of a step (script + package modules), so that editing one re-runs it.

    Paths are relative to the working directory when the repository is below it, absolute otherwise.
    """
    files = [REPO / "workflow" / "scripts" / s for s in (script, "_eenet_path.py")] + [PACKAGE / f"{m}.py" for m in ("__init__",) + modules]
    return [os.path.relpath(f) if not os.path.relpath(f).startswith("..") else str(f) for f in files]


# the package modules every model step (train, cache, profile) imports
STEP_MODULES = ("benchmark", "data", "download", "io", "models", "textdata", "training", "workflow")


def machine_cores():
    """All the cores of a local run (latency is timed with the machine to itself); 1 when jobs go to a
    cluster, where the profile's set-threads decides."""
    return workflow.resource_settings.cores or 1


def uses_gpu(wildcards):
    """1 GPU for a benchmark's model steps unless its device is the CPU."""
    return 0 if bench(wildcards)["device"] == "cpu" else 1


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


def unknown_benchmark(wildcards):
    """Input of the catch-all rule: a target names a benchmark the config does not have."""
    raise ValueError(f"unknown benchmark {wildcards.name!r} in the target; benchmarks in the config: {', '.join(sorted(BENCHMARKS))}")
