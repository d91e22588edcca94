"""Rule plot_curve: curve.pdf / curve.png (accuracy vs realised cost), runtime.pdf (measured vs simulated) and summary.csv."""

import json

import _eenet_path  # noqa: F401  (src/ importable without an install, e.g. under --sdm conda)
import torch

from eenet.costs import read_costs
from eenet.io import load_tensors, read_csv, read_json, write_csv
from eenet.plotting import SUMMARY_FIELDS, add_measured, oracle_frontier, plot_curve, plot_runtime, static_rows
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
runtime = read_csv(snakemake.input.runtime)
add_measured(rows, runtime)
for r in rows:
    r["seed"] = snakemake.params.seed
table = [{k: (json.dumps(r[k]) if isinstance(r.get(k), list) else r.get(k, "")) for k in SUMMARY_FIELDS} for r in rows]
write_csv(snakemake.output.summary, table, SUMMARY_FIELDS)
caption = (
    f"Costs measured on {meta.get('device')} (batch {meta.get('batch_size')}, {meta.get('threads')} thread(s), "
    f"torch {meta.get('torch_version')}); policies fitted on validation, evaluated on {tensors['labels'].numel()} test samples."
)
frontier = oracle_frontier(tensors["probs"], tensors["labels"], costs_ms)
x_axis = snakemake.params.x_axis
if x_axis == "measured":
    n = runtime[0]["samples"] if runtime else "?"
    caption += f" x: the adaptive runtime's measured latency at batch 1 on {n} test samples (runtime.csv)."
# the legend gives each policy's mean accuracy over the budget range (stats.csv)
auc = {r["method"]: float(r["auc"]) for r in read_csv(snakemake.input.stats) if r["budget_value"] == "all" and r["auc"] not in ("", "nan")}
plot_curve(rows, f"{bench}: accuracy vs. average latency", caption, [snakemake.output.pdf, snakemake.output.png], frontier, x_axis, auc)
rt = runtime[0] if runtime else {}
plot_runtime(
    runtime,
    f"{bench}: the adaptive runtime, measured vs. simulated",
    f"Measured on {rt.get('device')} ({rt.get('threads')} thread(s), torch {rt.get('torch_version')}), {rt.get('samples')} test "
    "samples, mean per sample (per ten batches the median of the timed repeats); simulated = the runtime's exit histogram x "
    "cost.csv; full model = every stage and head.",
    [snakemake.output.runtime_pdf],
)
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
