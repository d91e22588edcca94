"""Rule evaluate_test: apply one policy, fitted at each budget, to the test outputs -> accuracy, realised cost, exit
histogram, one JSON a budget (eenet.analysis.evaluation.evaluate_policy)."""

import torch

from eenet.analysis.evaluation import evaluate_policy
from eenet.io import read_csv, write_json
from eenet.measure.costs import read_costs
from eenet.pipeline.logs import setup_logging
from eenet.records import read_fitted_policy, read_logits_cache

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
w = snakemake.wildcards
log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
tensors, meta = read_logits_cache(snakemake.input.test, split="test")
costs_ms, flops, cost_meta = read_costs(read_csv(snakemake.input.cost))
for source, path in zip(snakemake.input.schedulers, snakemake.output, strict=True):
    row = evaluate_policy(read_fitted_policy(source), tensors, meta, costs_ms, flops, bench=w.bench, method=w.method,
                          device=cost_meta.get("device"), tolerance=snakemake.params.tolerance, source=snakemake.input.test,
                          fitted_source=source)  # fmt: skip
    if row["infeasible"]:
        log.warning("%s at %s: infeasible (%s)", w.method, row["budget_value"], row["note"])
    else:
        log.info("%s at %s: test accuracy %.4f, cost %.4f ms (%.1f%% of budget)", w.method, row["budget_value"],
                 row["test_accuracy"], row["test_cost_ms"], 100 * row["cost_ratio"])  # fmt: skip
    write_json(path, row)
