"""Rule plot_curve: curve.pdf / curve.png (accuracy vs realised cost), runtime.pdf (measured vs simulated) and summary.csv."""

import torch

from eenet.analysis.frontier import read_frontier
from eenet.analysis.plotting import SUMMARY_FIELDS, oracle_frontier, plot_curve, plot_runtime
from eenet.analysis.summary import auc_by_method, curve_caption, log_summary, runtime_caption, summary_rows, summary_table
from eenet.io import read_csv, read_json, write_csv
from eenet.measure.costs import read_costs, read_plain_cost
from eenet.pipeline.logs import setup_logging
from eenet.records import read_logits_cache

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
bench, p = snakemake.wildcards.bench, snakemake.params
log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
cost_rows = read_csv(snakemake.input.cost)
costs_ms, flops, meta = read_costs(cost_rows)
tensors, _ = read_logits_cache(snakemake.input.test, split="test")
probs, labels = tensors["probs"], tensors["labels"]
runtime = read_csv(snakemake.input.runtime)
evals = [read_json(f) for f in snakemake.input.evals]
rows = summary_rows(bench, evals, probs, labels, costs_ms, flops, meta.get("device", ""), runtime, p.seed)
write_csv(snakemake.output.summary, summary_table(rows), SUMMARY_FIELDS)
caption, plain_ms = curve_caption(meta, labels.numel(), p.x_axis, runtime, read_plain_cost(cost_rows), costs_ms[-1])
auc = auc_by_method(read_csv(snakemake.input.stats))  # the legend gives each policy's mean accuracy over the budgets
points = read_frontier(cost_rows, snakemake.input.frontier, probs, labels)  # the cuts, and the networks trained alone
plot_curve(rows, f"{bench}: accuracy vs. average latency", caption, [snakemake.output.pdf, snakemake.output.png],
           oracle_frontier(probs, labels, costs_ms), p.x_axis, auc, plain_ms,
           [(q["ms"], q["accuracy"]) for q in points if q["kind"] == "cut"],
           [(q["network"], q["ms"], q["accuracy"]) for q in points if q["kind"] != "cut"])  # fmt: skip
plot_runtime(runtime, f"{bench}: the adaptive runtime, measured vs. simulated", runtime_caption(runtime), [snakemake.output.runtime_pdf])
log_summary(log, rows)
