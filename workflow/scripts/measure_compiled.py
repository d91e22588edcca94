"""Rule measure_compiled: the fitted policies of `compiled.methods` run as AOTInductor-compiled segments (eenet export
--compiled's programs, one per structure, the learned tensors as inputs) and every cut of the network compiled alike,
timed at batch 1 beside their eager runs -> compiled.csv."""

from functools import partial

import torch

from eenet.data import DatasetSpec
from eenet.data.prepare import open_fetched
from eenet.io import read_csv, write_csv
from eenet.measure.compiled_runtime import COMPILED_FIELDS, decoded_images, measure_compiled
from eenet.measure.costs import read_costs
from eenet.measure.runtime import runnable_policies
from eenet.models import load_model
from eenet.pipeline.logs import run_metadata, setup_logging
from eenet.records import read_fitted_policy, read_logits_cache

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p = snakemake.params
log = setup_logging(snakemake.log[0])
torch.set_num_threads(p.threads)
model, meta = load_model(snakemake.input.model, "cpu")
costs_ms, _, _ = read_costs(read_csv(snakemake.input.cost))
tensors, _ = read_logits_cache(snakemake.input.test, split="test")
test = open_fetched(snakemake.input.data, meta, p.split, ("test",))["test"]
probs, labels = tensors["probs"], tensors["labels"]
if not torch.equal(labels, test.labels[: labels.numel()]):
    raise ValueError(f"{snakemake.input.test} holds other test samples than the dataset gives now: re-run cache_logits")
policies, info = runnable_policies([read_fitted_policy(f) for f in snakemake.input.schedulers], probs, labels, costs_ms)
policies = {name: s for name, s in policies.items() if not name.startswith("static_exit")}  # the fitted ones
spec = DatasetSpec.from_manifest(snakemake.input.data)
images = partial(decoded_images, test, mean=spec.mean, std=spec.std)  # an image folder's files decoded too
cfg = {**p.compiled, "seed": p.runtime["seed"]}
rows = measure_compiled(model, policies, spec, meta, images, probs, labels, costs_ms, cfg, log, tensors.get("logits"))
extra = {"bench": snakemake.wildcards.bench, "threads": p.threads, **run_metadata(torch.device("cpu"))}
cut = {"method": "", "budget_value": "", "budget_ms": ""}
table = [{**r, **(info[r["name"]] if r["kind"] == "policy" else {**cut, "method": r["name"]}), **extra} for r in rows]
for r in table:
    log.info("%-22s %-5s compiled %.4f ms (eager %.4f, x%.2f), x%.2f over the compiled plain network on the whole test set, "
             "exits as cached %s", r["method"], r["budget_value"], r["compiled_ms"], r["eager_ms"], r["compiled_vs_eager"],
             r["speedup_vs_plain_test"], r.get("exits_agree", ""))  # fmt: skip
write_csv(snakemake.output[0], table, COMPILED_FIELDS)
