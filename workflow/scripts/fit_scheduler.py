"""Rule fit_scheduler: fit one exit policy at one budget, on validation only -> JSON."""

import torch

from eenet.combiners import fit_combined
from eenet.io import load_tensors, read_csv, write_json
from eenet.measure.costs import read_costs, resolve_budget
from eenet.pipeline.logs import setup_logging
from eenet.schedulers import InfeasibleBudgetError

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
w, p = snakemake.wildcards, snakemake.params
log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
tensors, meta = load_tensors(snakemake.input.val)
if meta.get("split") != "val":
    raise ValueError(f"{snakemake.input.val} holds the {meta.get('split')!r} split; schedulers are fitted on validation only")
costs_ms, _, cost_meta = read_costs(read_csv(snakemake.input.cost))
budget_ms = resolve_budget(float(w.budget), p.unit, costs_ms)
log.info("fitting %s at budget %s %s = %.4f ms/sample (exit costs %s ms)", w.method, w.budget, p.unit, budget_ms, costs_ms)
record = {"bench": w.bench, "budget_value": float(w.budget), "budget_unit": p.unit, "budget_ms": budget_ms,
          "device": cost_meta.get("device"), "logits_model_sha256": meta.get("model_sha256")}  # fmt: skip
try:
    # the benchmark's `eenet:` block configures every EENet variant; an ablation leaves out what it fixes
    # "<combiner>+<policy>": the combiner is fitted first and the policy on its probabilities (eenet.combiners)
    sched = fit_combined(w.method, p.hyper, tensors["probs"], tensors.get("logits"), tensors["labels"], costs_ms, budget_ms)
except InfeasibleBudgetError as exc:
    log.warning("infeasible: %s", exc)
    write_json(snakemake.output[0], {**record, "method": w.method, "infeasible": True, "reason": str(exc)})
else:
    log.info("validation accuracy %.4f at realised cost %.4f ms (budget %.4f)", sched.val_accuracy_, sched.val_cost_, budget_ms)
    write_json(snakemake.output[0], {**record, **sched.to_json()})
