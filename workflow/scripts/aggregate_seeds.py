"""Rule aggregate_seeds: a benchmark's runs with several training seeds -> summary.csv (every seed's rows and the
mean over seeds), stats.csv (every seed's statistics and those over seeds, with intervals and Holm-adjusted p-values
of the two-level bootstrap over seeds and test samples), curve.pdf / curve.png (the mean, with the min-max band over
seeds)."""

import torch

from eenet.analysis.frontier import CLOCK_FIELDS, FRONTIER_FIELDS
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
for run, test in zip(p.runs, inp.tests, strict=True):
    tensors, _ = read_logits_cache(test, split="test")
    fitted = [read_fitted_policy(f) for f in inp.schedulers if f.startswith(f"results/{run}/")]
    decisions.append(policy_decisions(tensors["probs"], tensors["labels"], fitted, tensors.get("logits")))
stats = seed_stats(bench, seeds, p.tolerance, p.stats["bootstrap"], p.stats["seed"], decisions)
# each seed's own measured-clock comparisons (frontier, MaxPred at the measured latency), from its stats.csv
carry_seed_columns(stats, [r for f in inp.seed_stats for r in read_csv(f)], FRONTIER_FIELDS + CLOCK_FIELDS)
write_csv(snakemake.output.stats, stats, STATS_FIELDS)
log_stats(log, [r for r in stats if r["seed"] == "mean"])
caption = seeds_caption(bench, seeds, mean[0].get("device"), n_test)
title = f"{bench}: accuracy vs. average latency, {len(seeds)} seeds"
plot_curve(mean, title, caption, [snakemake.output.pdf, snakemake.output.png], None, "simulated", auc_by_method(stats, "mean"))
