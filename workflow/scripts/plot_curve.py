"""Rule plot_curve: curve.pdf / curve.png (accuracy vs realised cost) and summary.csv for one benchmark."""

import json

import _eenet_path  # noqa: F401  (src/ importable without an install, e.g. under --sdm conda)
import torch

from eenet.costs import read_costs
from eenet.io import load_tensors, read_csv, read_json, write_csv
from eenet.plotting import SUMMARY_FIELDS, oracle_frontier, plot_curve, static_rows
from eenet.workflow import setup_logging

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
bench = snakemake.wildcards.bench
log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
costs_ms, flops, meta = read_costs(read_csv(snakemake.input.cost))
tensors, _ = load_tensors(snakemake.input.test)
rows = [read_json(f) for f in snakemake.input.evals]
rows.sort(key=lambda r: (r["method"], r["budget_ms"]))
rows += static_rows(bench, tensors["probs"], tensors["labels"], costs_ms, flops, meta.get("device", ""))
table = [{k: (json.dumps(r[k]) if isinstance(r.get(k), list) else r.get(k, "")) for k in SUMMARY_FIELDS} for r in rows]
write_csv(snakemake.output.summary, table, SUMMARY_FIELDS)
caption = (
    f"Costs measured on {meta.get('device')} (batch {meta.get('batch_size')}, {meta.get('threads')} thread(s), "
    f"torch {meta.get('torch_version')}); policies fitted on validation, evaluated on {tensors['labels'].numel()} test samples."
)
frontier = oracle_frontier(tensors["probs"], tensors["labels"], costs_ms)
plot_curve(rows, f"{bench}: accuracy vs. average latency", caption, [snakemake.output.pdf, snakemake.output.png], frontier)
for r in rows:
    if r.get("infeasible"):
        log.info("%-14s budget %-6s infeasible", r["method"], r.get("budget_value"))
    else:
        log.info(
            "%-14s budget %-6s acc %.4f cost %.4f ms %s",
            r["method"],
            r.get("budget_value", "-"),
            r["test_accuracy"],
            r["test_cost_ms"],
            r.get("note", ""),
        )
