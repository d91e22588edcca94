"""Rule measure_runtime: run every fitted policy (and every single exit) through the adaptive runtime on test samples
and time it (batch 1 and a larger batch) beside the plain network, model(x) and the cost model -> runtime.csv."""

import torch

from eenet.data.prepare import open_fetched
from eenet.io import read_csv, write_csv
from eenet.measure.costs import read_costs
from eenet.measure.overhead import same_run_check
from eenet.measure.runtime import RUNTIME_FIELDS, log_runtime, measure_runtime, runnable_policies
from eenet.models import load_model
from eenet.pipeline.logs import run_metadata, setup_logging
from eenet.records import read_fitted_policy, read_logits_cache
from eenet.training.inference import pick_device

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p = snakemake.params
log = setup_logging(snakemake.log[0])
torch.set_num_threads(p.threads)
device = pick_device(p.device)
model, meta = load_model(snakemake.input.model, device)
costs_ms, _, _ = read_costs(read_csv(snakemake.input.cost))
tensors, _ = read_logits_cache(snakemake.input.test, split="test")
test = open_fetched(snakemake.input.data, meta, p.split, ("test",), max_length=p.max_length)["test"]
probs, labels = tensors["probs"], tensors["labels"]
if not torch.equal(labels, test.labels[: labels.numel()]):
    raise ValueError(f"{snakemake.input.test} holds other test samples than the dataset gives now: re-run cache_logits")
policies, info = runnable_policies([read_fitted_policy(f) for f in snakemake.input.schedulers], probs, labels, costs_ms)
rows = measure_runtime(model, policies, test.inputs, probs, labels, costs_ms, p.runtime, device, log, tensors.get("logits"))
same_run_check(rows, policies, costs_ms)  # the cost model against the single exits timed in this run (machine drift left out)
extra = {"bench": snakemake.wildcards.bench, "threads": p.threads, **run_metadata(device)}
table = [{**r, **info[r["name"]], **extra} for r in rows]
log_runtime(log, table)
write_csv(snakemake.output[0], table, RUNTIME_FIELDS)
