"""Rule exit_analysis: per policy, budget and exit the share of test samples that leave there and their accuracy
(exits.csv); for one policy and budget the first test samples that leave at each exit (examples.csv) as an image
grid or a list of sentences (examples.pdf)."""

import torch

from eenet.analysis.exits import EXAMPLES_FIELDS, EXITS_FIELDS, exit_table, pick_examples, plot_examples, raw_samples
from eenet.data import DatasetSpec
from eenet.io import load_tensors, read_json, write_csv
from eenet.pipeline.logs import data_root, setup_logging

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p = snakemake.params
bench = snakemake.wildcards.bench
log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
tensors, _ = load_tensors(snakemake.input.test)
probs, labels = tensors["probs"], tensors["labels"]
fitted = [read_json(f) for f in snakemake.input.schedulers]
table = exit_table(bench, probs, labels, fitted, tensors.get("logits"))
write_csv(snakemake.output.exits, table, EXITS_FIELDS)
shown = next((f for f in fitted if f["method"] == p.method and str(f["budget_value"]) == str(p.budget)), None)
if shown is None or shown.get("infeasible"):
    raise ValueError(f"examples.method {p.method!r} at budget {p.budget} has no feasible fit in results/{bench}/schedulers/")
rows = pick_examples(shown, probs, labels, p.per_exit, tensors.get("logits"))
spec = DatasetSpec.from_manifest(snakemake.input.data)
samples = raw_samples(spec, data_root(snakemake.input.data), [r["index"] for r in rows])
for r, s in zip(rows, samples, strict=True):
    r.update({"bench": bench, "text": s if isinstance(s, str) else ""})
write_csv(snakemake.output.examples, rows, EXAMPLES_FIELDS)
shares = {r["exit"]: r for r in table if r["method"] == p.method and r["budget_value"] == shown["budget_value"]}
summary = ", ".join(f"exit {k}: {100 * r['share']:.1f} % of samples" + (f" at {100 * r['accuracy']:.1f} % accuracy" if r["samples"] else "")
                    for k, r in sorted(shares.items()))  # fmt: skip
caption = (
    f"{p.method} at budget {shown['budget_value']} ({shown['budget_unit']}): the first {p.per_exit} test samples in test order "
    f"that leave at each exit; label -> prediction, red when wrong. {summary}."
)
plot_examples(
    rows, samples, list(spec.classes) if spec.classes else None, f"{bench}: which test samples leave where", caption, [snakemake.output.pdf]
)
for r in table:
    if r["method"] == p.method:
        log.info("%-12s budget %-5s exit %d: %5d samples (%.3f), accuracy %s", r["method"], r["budget_value"], r["exit"],
                 r["samples"], r["share"], r["accuracy"])  # fmt: skip
