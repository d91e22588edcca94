# Helpers shared by the rules (config validation, paths, the code each step depends on).

import os
import re
import sys
from pathlib import Path

from snakemake.utils import validate

from eenet.pipeline.preflight import rename_former_combiners

# a combiner's former name (`ztw`, now `ztw_ens`) is read as the name now, with a one-line notice, before the schema's check
_renamed = rename_former_combiners(config)
if _renamed:
    print(f"eenet: {_renamed}", file=sys.stderr)
validate(config, schema="../workflow/schemas/config.schema.yaml")


def canonical(value):
    """The same value with every mapping's keys sorted, so that params compare equal whatever the key order in the YAML."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


REPO = Path(workflow.basedir)
ENV = "../envs/pipeline.yaml"

# The workflow layer of the installed package (eenet.pipeline; `make` installs it): checks before any job, training
# seeds, each rule's code inputs. Standard library only, so planning the jobs imports no torch.
from eenet.pipeline.codeinputs import code_files  # noqa: E402
from eenet.pipeline.preflight import (
    check_all,
    check_frontier_seeds,
    resolve_datasets,
)  # noqa: E402
from eenet.pipeline.runs import expand_seed_runs, world_size  # noqa: E402
import eenet.pipeline.planning as planning  # noqa: E402
from eenet.pipeline.planning import METHOD_PATTERN, policy_methods  # noqa: E402
from eenet.pipeline.scheduling import apply as repair_job_scheduler  # noqa: E402

repair_job_scheduler()  # one re-evaluation timer at a time (Snakemake's pile up and busy a core: see the module)

# BENCHMARKS: every run (a benchmark with one seed, or one seed of a benchmark with a list of seeds: "<bench>/seed<s>");
# SEEDED: each benchmark with a list of seeds -> its runs, aggregated in results/<bench>/.
check_frontier_seeds(config["benchmarks"])
BENCHMARKS, SEEDED = expand_seed_runs(canonical(config["benchmarks"]))
# wildcard patterns: the runs, and the benchmarks with several seeds (never matches: a name no benchmark has)
RUNS = "|".join(BENCHMARKS)
SEEDED_NAMES = "|".join(SEEDED) or "(?!)"

# DATASETS: every dataset a benchmark can name (the built-in ones with the config's overrides, and the user's own),
# each with all its keys. Every check runs here, whatever the target: each benchmark names a known dataset and an
# architecture that reads what it holds and has the exits named, each dataset's local source is what its kind needs.
DATASETS = resolve_datasets(config["datasets"])
check_all(BENCHMARKS, DATASETS)


def code(script):
    """Inputs naming the code of a step: its script and every package module the script imports,
    transitively (read from the import statements), so that editing one re-runs exactly the rules that run it.

    Paths are relative to the working directory when the repository is below it, absolute otherwise.
    """
    files = code_files(REPO / "workflow" / "scripts" / script, REPO / "src")
    return [
        os.path.relpath(f) if not os.path.relpath(f).startswith("..") else str(f)
        for f in files
    ]


def machine_cores():
    """All the cores of a local run (latency is timed with the machine to itself); 1 when jobs go to a
    cluster, where the profile's set-threads decides."""
    return workflow.resource_settings.cores or 1


def uses_gpu(wildcards):
    """1 GPU for a benchmark's model steps unless its device is the CPU."""
    return 0 if bench(wildcards)["device"] == "cpu" else 1


def training_ranks(wildcards):
    """Data-parallel ranks of a benchmark's training (eenet.pipeline.runs.world_size)."""
    return world_size(bench(wildcards)["train"])


def training_gpus(wildcards):
    """GPUs of a benchmark's training job (all its nodes: SLURM's --gpus): one per rank, none on the CPU."""
    return uses_gpu(wildcards) * training_ranks(wildcards)


def bench(wildcards):
    if wildcards.bench in SEEDED:
        runs = ", ".join(f"results/{r}/" for r in SEEDED[wildcards.bench])
        raise ValueError(
            f"benchmark {wildcards.bench!r} runs several seeds: each seed's files are in {runs}"
        )
    return BENCHMARKS[wildcards.bench]


def dataset_manifest(wildcards):
    """The manifest download_dataset writes once a benchmark's raw files are verified."""
    return f"data/{bench(wildcards)['dataset']}/manifest.json"


def budget_names(name):
    """Budget values of a benchmark, as they appear in file names."""
    return [str(v) for v in BENCHMARKS[name]["budgets"]["values"]]


def budget_sets():
    """Each distinct list of budgets (as in file names) -> the runs that have it, in the order of the benchmarks in the
    config file (the first benchmark's rules are fit_scheduler and evaluate_test, without a suffix).
    """
    order = list(config["benchmarks"])
    base = {run: b for b, runs in SEEDED.items() for run in runs}
    sets = {}
    for name in sorted(BENCHMARKS, key=lambda n: order.index(base.get(n, n))):
        sets.setdefault(tuple(budget_names(name)), []).append(name)
    return sets


BUDGET_SETS = budget_sets()


def runs_pattern(runs):
    """A wildcard pattern matching exactly these runs."""
    return "|".join(re.escape(r) for r in runs)


def per_policy(pattern, methods=policy_methods):
    """An input function: ``pattern`` (with {bench}, {method}, {budget}) for every method of the benchmark (``methods``
    of its config block: every policy by default) and every budget."""

    def files(wildcards):
        return expand(
            pattern,
            bench=wildcards.bench,
            method=methods(bench(wildcards)),
            budget=budget_names(wildcards.bench),
        )

    return files


eval_files = per_policy("results/{bench}/eval/{method}/{budget}.json")
scheduler_files = per_policy("results/{bench}/schedulers/{method}/{budget}.json")


# The fitted-policy files of a run's `compiled.methods`, every budget: what measure_compiled compiles
compiled_scheduler_files = per_policy(
    "results/{bench}/schedulers/{method}/{budget}.json", planning.compiled_methods
)


def combined_scheduler_files(wildcards):
    """The fitted-policy files of every combined policy (<combiner>+<method>) of a run, or of each seed's run of a
    benchmark with several seeds: what the report's table of combiner losses reads."""
    runs = SEEDED.get(wildcards.bench, [wildcards.bench])
    return [
        f"results/{run}/schedulers/{method}/{budget}.json"
        for run in runs
        for method in planning.combined_methods(BENCHMARKS[run])
        for budget in budget_names(run)
    ]


def method_params(wildcards):
    """Hyper-parameters of a method from the benchmark's config (fit_scheduler keeps what the method accepts)."""
    return planning.hyper_params(bench(wildcards), wildcards.method)


def study_methods(wildcards):
    """The policies of the reliability study and their hyper-parameters (eenet.pipeline.planning.study_methods)."""
    return planning.study_methods(bench(wildcards))


def seed_runs(pattern):
    """An input function: ``pattern`` (with {run}) for every seed's run of the benchmark."""

    def files(wildcards):
        return expand(pattern, run=SEEDED[wildcards.bench])

    return files


def seed_policies(pattern):
    """An input function: ``pattern`` (with {run}, {method}, {budget}) for every seed, method and budget of the benchmark."""

    def files(wildcards):
        first = SEEDED[wildcards.bench][0]
        return expand(
            pattern,
            run=SEEDED[wildcards.bench],
            method=policy_methods(BENCHMARKS[first]),
            budget=budget_names(first),
        )

    return files


def seeded_bench(wildcards):
    """The config of a benchmark with several seeds (its first run's: they differ only in the seeds)."""
    return BENCHMARKS[SEEDED[wildcards.bench][0]]


def example_policy(wildcards):
    """(method, budget value) whose examples exit_analysis shows (eenet.pipeline.planning.example_policy)."""
    return planning.example_policy(bench(wildcards))


def all_targets():
    """The files of `snakemake all` (eenet.pipeline.planning.all_targets)."""
    compiled = [r for r, b in BENCHMARKS.items() if planning.compiled_methods(b)]
    return planning.all_targets(list(BENCHMARKS), SEEDED, compiled)


def unknown_benchmark(wildcards):
    """Input of the catch-all rule: a target names a benchmark the config does not have."""
    raise ValueError(
        f"unknown benchmark {wildcards.name!r} in the target; benchmarks in the config: {', '.join(sorted([*BENCHMARKS, *SEEDED]))}"
    )
