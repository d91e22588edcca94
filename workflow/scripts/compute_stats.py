"""Rule compute_stats: AUC, gap to the oracle, paired bootstrap intervals against MaxPred, budget compliance -> stats.csv."""

import _eenet_path  # noqa: F401  (src/ importable without an install, e.g. under --sdm conda)
import torch

from eenet.io import load_tensors, read_json, write_csv
from eenet.schedulers import exit_predictions, scheduler_from_json
from eenet.stats import STATS_FIELDS, benchmark_stats
from eenet.workflow import setup_logging

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p = snakemake.params
log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
tensors, _ = load_tensors(snakemake.input.test)
probs, labels = tensors["probs"], tensors["labels"]
correct = {}
for path in snakemake.input.schedulers:
    fitted = read_json(path)
    if fitted.get("infeasible"):
        continue
    exits = scheduler_from_json(fitted).assign(probs, labels)  # only the oracle reads the labels
    correct[(fitted["method"], fitted["budget_value"])] = exit_predictions(probs, exits) == labels
evals = [read_json(f) for f in snakemake.input.evals]
rows = benchmark_stats(snakemake.wildcards.bench, correct, evals, p.tolerance, p.stats["bootstrap"], p.stats["seed"])
write_csv(snakemake.output[0], [{k: r.get(k, "") for k in STATS_FIELDS} for r in rows], STATS_FIELDS)
for r in rows:
    if r["budget_value"] == "all":
        msg = "%-12s AUC %.4f, mean gap to the oracle %s, share over budget %s"
        log.info(msg, r["method"], r["auc"], r["mean_gap_to_oracle"], r["share_over_budget"])
    elif "vs_maxpred" in r:
        log.info("%-12s %-5s %+.4f vs maxpred (95%% CI %+.4f .. %+.4f)", r["method"], r["budget_value"], r["vs_maxpred"],
                 r["vs_maxpred_ci_low"], r["vs_maxpred_ci_high"])  # fmt: skip
