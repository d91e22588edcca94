"""Rule evaluate_test: apply a fitted policy to the test logits -> accuracy, realised cost, exit histogram."""

import torch

from eenet.combiners import policy_outputs
from eenet.io import load_tensors, read_csv, read_json, write_json
from eenet.measure.costs import read_costs
from eenet.pipeline.logs import setup_logging
from eenet.schedulers import accuracy, realised_cost, scheduler_from_json

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
w = snakemake.wildcards
log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
fitted = read_json(snakemake.input.scheduler)
tensors, meta = load_tensors(snakemake.input.test)
if meta.get("model_sha256") != fitted.get("logits_model_sha256"):
    raise ValueError(f"{snakemake.input.test} comes from another model than the one {snakemake.input.scheduler} was fitted on")
costs_ms, flops, cost_meta = read_costs(read_csv(snakemake.input.cost))
row = {"bench": w.bench, "method": w.method, "budget_value": fitted["budget_value"], "budget_unit": fitted["budget_unit"],
       "budget_ms": fitted["budget_ms"], "device": cost_meta.get("device")}  # fmt: skip
if fitted.get("infeasible"):
    row.update({"infeasible": True, "note": fitted["reason"]})
    log.warning("%s at %s: infeasible (%s)", w.method, w.budget, fitted["reason"])
else:
    sched = scheduler_from_json(fitted)
    probs, labels = policy_outputs(sched, tensors, snakemake.input.test), tensors["labels"]  # combined, with a combiner
    exits = sched.assign(probs, labels)  # only policies that need labels (the oracle) read them
    cost = realised_cost(exits, torch.tensor(costs_ms))
    ratio = cost / fitted["budget_ms"]
    within = abs(ratio - 1) <= snakemake.params.tolerance
    note = ""
    if not within and w.method == "oracle" and ratio < 1:
        note = "oracle saturated: every sample that any exit gets right is already right; more budget buys nothing"
    elif not within:
        note = f"realised cost is {100 * (ratio - 1):+.1f}% off the budget"
    row.update({
        "infeasible": False,
        "test_accuracy": accuracy(probs, labels, exits),
        "test_cost_ms": cost,
        "test_cost_flops": realised_cost(exits, torch.tensor(flops, dtype=torch.float64)),
        "cost_ratio": ratio,
        "within_tolerance": within,
        "val_accuracy": sched.val_accuracy_,
        "val_cost_ms": sched.val_cost_,
        "exit_histogram": torch.bincount(exits, minlength=sched.num_exits_).tolist(),
        "note": note,
    })  # fmt: skip
    log.info("%s at %s: test accuracy %.4f, cost %.4f ms (%.1f%% of budget)", w.method, w.budget, row["test_accuracy"], cost, 100 * ratio)
write_json(snakemake.output[0], row)
