"""Rule measure_runtime: run every fitted policy (and every single exit) through the adaptive runtime on test samples
and time it (batch 1 and a larger batch) beside the plain network, model(x) and the cost model -> runtime.csv."""

import torch

from eenet.data import DatasetSpec
from eenet.data.prepare import open_benchmark
from eenet.io import load_tensors, read_csv, read_json, write_csv
from eenet.measure.costs import read_costs
from eenet.measure.runtime import RUNTIME_FIELDS, measure_runtime
from eenet.models import load_model
from eenet.pipeline.logs import data_root, run_metadata, setup_logging
from eenet.schedulers import StaticScheduler, scheduler_from_json
from eenet.training.inference import pick_device

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p = snakemake.params
log = setup_logging(snakemake.log[0])
torch.set_num_threads(p.threads)
device = pick_device(p.device)
model, meta = load_model(snakemake.input.model, device)
costs_ms, _, _ = read_costs(read_csv(snakemake.input.cost))
tensors, _ = load_tensors(snakemake.input.test)
spec = DatasetSpec.from_manifest(snakemake.input.data)
test = open_benchmark(spec, data_root(snakemake.input.data), str(meta["arch"]), dict(meta.get("arch_kwargs") or {}), p.split,
                      ("test",), max_length=p.max_length)["test"]  # fmt: skip
probs, labels = tensors["probs"], tensors["labels"]
if not torch.equal(labels, test.labels[: labels.numel()]):
    raise ValueError(f"{snakemake.input.test} holds other test samples than the dataset gives now: re-run cache_logits")

# the policies that can run as inference (not the oracle, not an infeasible budget) and every single exit
policies, info = {}, {}
for path in snakemake.input.schedulers:
    fitted = read_json(path)
    if fitted.get("infeasible") or fitted["method"] == "oracle":
        continue
    name = f"{fitted['method']}/{fitted['budget_value']}"
    policies[name] = scheduler_from_json(fitted)
    info[name] = {"method": fitted["method"], "budget_value": fitted["budget_value"], "budget_ms": fitted["budget_ms"]}
for k in range(model.num_exits):
    policies[f"static_exit{k}"] = StaticScheduler(exit_index=k).fit(probs, labels, costs_ms, costs_ms[k])
    info[f"static_exit{k}"] = {"method": f"static_exit{k}", "budget_value": "", "budget_ms": costs_ms[k]}

rows = measure_runtime(model, policies, test.inputs, probs, labels, costs_ms, p.runtime, device, log, tensors.get("logits"))
extra = {"bench": snakemake.wildcards.bench, "threads": p.threads, **run_metadata(device)}
table = [{**r, **info[r["name"]], **extra} for r in rows]
for r in table:
    log.info("batch %d %-14s %-5s measured %.4f ms (simulated %.4f, x%.3f), speed-up x%.2f over the plain network, exits as cached %.4f",
             r["batch_size"], r["method"], r["budget_value"], r["measured_ms"], r["simulated_ms"], r["measured_vs_simulated"],
             r["speedup_vs_plain"], r["exits_agree"])  # fmt: skip
write_csv(snakemake.output[0], [{k: r.get(k, "") for k in RUNTIME_FIELDS} for r in table], RUNTIME_FIELDS)
