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
ENV = "../envs/pipeline.yaml"

# The workflow reads the package's own import graph (eenet.codedeps, standard library only).
sys.path.insert(0, str(REPO / "src"))
from eenet.codedeps import code_files  # noqa: E402


def code(script):
    """Inputs naming the code of a step: its script and every package module the script imports,
    transitively (read from the import statements), so that editing one re-runs exactly the rules that run it.

    Paths are relative to the working directory when the repository is below it, absolute otherwise.
    """
    files = code_files(REPO / "workflow" / "scripts" / script, REPO / "src")
    return [os.path.relpath(f) if not os.path.relpath(f).startswith("..") else str(f) for f in files]


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


def per_policy(pattern):
    """An input function: ``pattern`` (with {bench}, {method}, {budget}) for every method and budget of the benchmark."""

    def files(wildcards):
        return expand(pattern, bench=wildcards.bench, method=bench(wildcards)["methods"], budget=budget_names(wildcards.bench))

    return files


eval_files = per_policy("results/{bench}/eval/{method}/{budget}.json")
scheduler_files = per_policy("results/{bench}/schedulers/{method}/{budget}.json")


def method_params(wildcards):
    """Hyper-parameters of a method from the benchmark's config: the `eenet` block, for EENet and its ablations."""
    return dict(bench(wildcards).get("eenet", {})) if wildcards.method.startswith("eenet") else {}


def all_curves():
    return expand("results/{bench}/curve.pdf", bench=BENCHMARKS)


def unknown_benchmark(wildcards):
    """Input of the catch-all rule: a target names a benchmark the config does not have."""
    raise ValueError(f"unknown benchmark {wildcards.name!r} in the target; benchmarks in the config: {', '.join(sorted(BENCHMARKS))}")
