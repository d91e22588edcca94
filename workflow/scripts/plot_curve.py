"""Rule plot_curve: curve.pdf / curve.png (accuracy vs realised cost), runtime.pdf (measured vs simulated) and summary.csv."""

import json

import torch

from eenet.analysis.plotting import SUMMARY_FIELDS, add_measured, oracle_frontier, plot_curve, plot_runtime, static_rows
from eenet.io import load_tensors, read_csv, read_json, write_csv
from eenet.measure.costs import read_costs, read_plain_cost
from eenet.pipeline.logs import setup_logging

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
bench = snakemake.wildcards.bench
log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
cost_rows = read_csv(snakemake.input.cost)
costs_ms, flops, meta = read_costs(cost_rows)
plain = read_plain_cost(cost_rows)
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
plain_ms = plain["ms"] if plain else None
if x_axis == "measured":
    n = runtime[0]["samples"] if runtime else "?"
    caption += f" x: the adaptive runtime's measured latency at batch 1 on {n} test samples (runtime.csv)."
    plain_ms = next((float(r["plain_ms"]) for r in runtime if r["batch_size"] == "1" and r.get("plain_ms")), None)
if plain_ms is not None:
    caption += f" Dotted: the plain network (stages + last head, no early exit), {plain_ms / costs_ms[-1]:.2f} of the last exit's cost."
# the legend gives each policy's mean accuracy over the budget range (stats.csv)
auc = {r["method"]: float(r["auc"]) for r in read_csv(snakemake.input.stats) if r["budget_value"] == "all" and r["auc"] not in ("", "nan")}
plot_curve(rows, f"{bench}: accuracy vs. average latency", caption, [snakemake.output.pdf, snakemake.output.png], frontier, x_axis, auc,
           plain_ms)  # fmt: skip
rt = runtime[0] if runtime else {}
plot_runtime(
    runtime,
    f"{bench}: the adaptive runtime, measured vs. simulated",
    f"Measured on {rt.get('device')} ({rt.get('threads')} thread(s), torch {rt.get('torch_version')}), {rt.get('samples')} test "
    "samples, mean per sample (per ten batches the median of the timed repeats); simulated = the runtime's exit histogram x "
    "cost.csv; speed-up over the plain network (every stage, the last head only: the network run without early exit).",
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
