"""Rule aggregate_seeds: a benchmark's runs with several training seeds -> summary.csv (every seed's rows and the
mean over seeds), stats.csv (every seed's statistics and those over seeds, with intervals and Holm-adjusted p-values
of the two-level bootstrap over seeds and test samples; each seed against its own plain-network frontier at its measured
latencies, and over seeds), curve.pdf / curve.png (the mean, with the min-max band over seeds)."""

import torch

from eenet.analysis.frontier import CLOCK_FIELDS, FRONTIER_FIELDS, read_frontier, seed_frontier_columns, seed_latencies
from eenet.analysis.plotting import SUMMARY_FIELDS, aggregate_seed_rows, plot_curve
from eenet.analysis.stats import STATS_FIELDS, carry_seed_columns, log_stats, policy_decisions, seed_stats
from eenet.analysis.summary import auc_by_method, read_seed_runs, seeds_caption
from eenet.io import read_csv, write_csv
from eenet.pipeline.logs import setup_logging
from eenet.records import read_fitted_policy, read_logits_cache

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p, inp, bench = snakemake.params, snakemake.input, snakemake.wildcards.bench
log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
seeds, summary, n_test = read_seed_runs(p.runs, inp.summaries, inp.tests, inp.schedulers, inp.evals, log)
mean = aggregate_seed_rows(bench, summary)
write_csv(snakemake.output.summary, summary + mean, SUMMARY_FIELDS)
decisions = []  # per run, each policy's exits and predictions: policies deciding alike in every run are one row
frontiers = []  # per run, (each policy's outcomes, runtime.csv, its frontier points): the seeds against their frontiers
for (_, correct, _), run, test, cost, runtime in zip(seeds, p.runs, inp.tests, inp.costs, inp.runtimes, strict=True):
    tensors, _ = read_logits_cache(test, split="test")
    fitted = [read_fitted_policy(f) for f in inp.schedulers if f.startswith(f"results/{run}/")]
    decisions.append(policy_decisions(tensors["probs"], tensors["labels"], fitted, tensors.get("logits")))
    own = [f for f in inp.frontier if f.startswith(f"results/{run}/")]
    frontiers.append((correct, read_csv(runtime), read_frontier(read_csv(cost), own, tensors["probs"], tensors["labels"])))
stats = seed_stats(bench, seeds, p.tolerance, p.stats["bootstrap"], p.stats["seed"], decisions)
# each seed's own measured-clock comparisons (frontier, MaxPred at the measured latency), from its stats.csv
seed_files = [read_csv(f) for f in inp.seed_stats]
carry_seed_columns(stats, [r for rows in seed_files for r in rows], FRONTIER_FIELDS + CLOCK_FIELDS)
# over seeds: each seed against its own frontier at the latency its stats.csv gives (an alias: its row's), intervals over
# seeds and test samples (two-level), Holm over the rows
latencies = [seed_latencies(rows) for rows in seed_files]
seed_frontier_columns([r for r in stats if r["seed"] == "mean"], frontiers, p.stats["bootstrap"], p.stats["seed"], latencies)
write_csv(snakemake.output.stats, stats, STATS_FIELDS)
log_stats(log, [r for r in stats if r["seed"] == "mean"])
caption = seeds_caption(bench, seeds, mean[0].get("device"), n_test)
title = f"{bench}: accuracy vs. average latency, {len(seeds)} seeds"
plot_curve(mean, title, caption, [snakemake.output.pdf, snakemake.output.png], None, "simulated", auc_by_method(stats, "mean"))
