"""Rule compute_stats: AUC, gap to the oracle, paired bootstrap intervals and Holm-adjusted p-values against MaxPred,
budget compliance, the advantage over MaxPred and over the plain-network frontier at equal measured latency (the cuts of cost.csv, or
with networks trained alone every network of frontier.csv) -> stats.csv (one row per group of policies with the same
decisions)."""

import torch

from eenet.analysis.frontier import clock_columns, frontier_columns, read_frontier
from eenet.analysis.stats import STATS_FIELDS, benchmark_stats, correct_by_policy, log_stats
from eenet.io import read_csv, read_json, write_csv
from eenet.pipeline.logs import setup_logging
from eenet.records import read_fitted_policy, read_logits_cache

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p = snakemake.params
log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
tensors, _ = read_logits_cache(snakemake.input.test, split="test")
fitted = [read_fitted_policy(f) for f in snakemake.input.schedulers]
decisions: dict = {}  # each policy's exits and predictions: policies deciding alike are one row
correct = correct_by_policy(tensors["probs"], tensors["labels"], fitted, tensors.get("logits"), decisions)  # combiners read the logits
evals = [read_json(f) for f in snakemake.input.evals]  # in config order (methods, then budgets)
rows = benchmark_stats(snakemake.wildcards.bench, correct, evals, p.tolerance, p.stats["bootstrap"], p.stats["seed"], decisions)
# the plain-network frontier (the network cut after each exit, and the networks trained alone) at each policy's measured latency
points = read_frontier(read_csv(snakemake.input.cost), snakemake.input.frontier, tensors["probs"], tensors["labels"])
runtime = read_csv(snakemake.input.runtime)
frontier_columns(rows, correct, runtime, points, p.stats["bootstrap"], p.stats["seed"])
# MaxPred at each policy's measured latency (batch 1 and runtime.csv's larger batch), beside vs_maxpred at equal simulated cost
clock_columns(rows, correct, runtime, "maxpred", p.stats["bootstrap"], p.stats["seed"])
for r in rows:
    r["seed"] = p.seed
write_csv(snakemake.output[0], rows, STATS_FIELDS)
log_stats(log, rows)
