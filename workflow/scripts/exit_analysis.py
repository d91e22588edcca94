"""Rule exit_analysis: per policy, budget and exit the share of test samples that leave there and their accuracy
(exits.csv); for one policy and budget the first test samples that leave at each exit (examples.csv) as an image
grid or a list of sentences (examples.pdf)."""

from pathlib import Path

import torch

from eenet.analysis.exits import (
    EXAMPLES_FIELDS,
    EXITS_FIELDS,
    examples_caption,
    exit_table,
    pick_examples,
    plot_examples,
    raw_samples,
    shown_policy,
)
from eenet.data import DatasetSpec
from eenet.io import write_csv
from eenet.pipeline.logs import setup_logging
from eenet.records import read_fitted_policy, read_logits_cache

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p, bench = snakemake.params, snakemake.wildcards.bench
log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
tensors, _ = read_logits_cache(snakemake.input.test, split="test")
probs, labels, logits = tensors["probs"], tensors["labels"], tensors.get("logits")
fitted = [read_fitted_policy(f) for f in snakemake.input.schedulers]
table = exit_table(bench, probs, labels, fitted, logits)
write_csv(snakemake.output.exits, table, EXITS_FIELDS)
shown, notice = shown_policy(fitted, p.method, p.budget, bench)
if notice:
    log.warning(notice)
rows = pick_examples(shown, probs, labels, p.per_exit, logits)
spec = DatasetSpec.from_manifest(snakemake.input.data)
samples = raw_samples(spec, Path(snakemake.input.data).parent, [r["index"] for r in rows])
rows = [{**r, "bench": bench, "text": s if isinstance(s, str) else ""} for r, s in zip(rows, samples, strict=True)]
write_csv(snakemake.output.examples, rows, EXAMPLES_FIELDS)
classes = list(spec.classes) if spec.classes else None
plot_examples(rows, samples, classes, f"{bench}: which test samples leave where", examples_caption(table, shown, p.per_exit, notice),
              [snakemake.output.pdf])  # fmt: skip
log.info("exits.csv: %d rows; examples.pdf: %d samples of %s at budget %s", len(table), len(rows), shown["method"], shown["budget_value"])
