# eenet-pipeline: budgeted early-exit inference (EENet, WACV 2024), one rule per stage.
#   download_dataset -> train_multiexit -> cache_logits -> profile_latency
#   -> fit_scheduler (a job per method, every budget) -> evaluate_test -> plot_curve
#   fitted schedulers -> measure_runtime (the adaptive runtime, timed) -> plot_curve
#   frontier.trained: train_frontier -> frontier_logits, frontier_cost -> compute_stats, plot_curve (plain networks trained alone)
# See README.md; configuration keys are documented in workflow/schemas/config.schema.yaml.

from snakemake.utils import min_version

min_version(
    "9.27.1"
)  # eenet.pipeline.scheduling repairs this version's scheduler (requirements.txt pins it)


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"


wildcard_constraints:
    bench="|".join([*BENCHMARKS, *SEEDED]),
    dataset="|".join(sorted({b["dataset"] for b in BENCHMARKS.values()})),
    method=METHOD_PATTERN,
    budget=r"[0-9]+(\.[0-9]+)?",


# On a cluster these run on the submit node: compute nodes often have no internet, and a plot is seconds.
localrules:
    download_dataset,
    plot_curve,


include: "rules/download.smk"
include: "rules/train.smk"
include: "rules/cache.smk"
include: "rules/latency.smk"
include: "rules/frontier.smk"
include: "rules/schedule.smk"
include: "rules/runtime.smk"
include: "rules/stats.smk"
include: "rules/plot.smk"
include: "rules/report.smk"
include: "rules/reliability.smk"
include: "rules/targets.smk"


rule all:
    default_target: True
    input:
        all_targets(),
