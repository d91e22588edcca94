"""Rule aggregate_seeds: a benchmark's runs with several training seeds -> summary.csv (every seed's rows and the
mean over seeds), stats.csv (every seed's statistics and those over seeds), curve.pdf / curve.png (the mean, with the
min-max band over seeds)."""

import torch

from eenet.analysis.plotting import SUMMARY_FIELDS, aggregate_seed_rows, plot_curve
from eenet.analysis.stats import STATS_FIELDS, correct_by_policy, log_stats, seed_stats
from eenet.io import load_tensors, read_csv, read_json, write_csv
from eenet.pipeline.logs import setup_logging

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p = snakemake.params
bench = snakemake.wildcards.bench
log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)


def of_run(paths, run):
    return [f for f in paths if f.startswith(f"results/{run}/")]


seeds, summary = [], []
for run, summary_csv, test in zip(p.runs, snakemake.input.summaries, snakemake.input.tests, strict=True):
    rows = read_csv(summary_csv)
    label = rows[0]["seed"]
    tensors, _ = load_tensors(test)
    correct = correct_by_policy(tensors["probs"], tensors["labels"], [read_json(f) for f in of_run(snakemake.input.schedulers, run)])
    seeds.append((label, correct, [read_json(f) for f in of_run(snakemake.input.evals, run)]))
    summary += rows
    log.info("%s: seed %s, %d summary rows, %d fitted policies", run, label, len(rows), len(correct))
mean = aggregate_seed_rows(bench, summary)
write_csv(snakemake.output.summary, [{k: r.get(k, "") for k in SUMMARY_FIELDS} for r in summary + mean], SUMMARY_FIELDS)
stats = seed_stats(bench, seeds, p.tolerance, p.stats["bootstrap"], p.stats["seed"])
write_csv(snakemake.output.stats, [{k: r.get(k, "") for k in STATS_FIELDS} for r in stats], STATS_FIELDS)
log_stats(log, [r for r in stats if r["seed"] == "mean"])
auc = {r["method"]: float(r["auc"]) for r in stats if r["seed"] == "mean" and r["budget_value"] == "all" and r["auc"] == r["auc"]}
caption = (
    f"Mean over {len(seeds)} training seeds ({', '.join(str(s[0]) for s in seeds)}); shaded: the lowest to the highest "
    f"seed. Costs measured per seed on {mean[0].get('device')}; policies fitted on validation, evaluated on "
    f"{tensors['labels'].numel()} test samples. Every seed's curve: results/{bench}/seed<s>/curve.pdf."
)
title = f"{bench}: accuracy vs. average latency, {len(seeds)} seeds"
plot_curve(mean, title, caption, [snakemake.output.pdf, snakemake.output.png], None, "simulated", auc)
