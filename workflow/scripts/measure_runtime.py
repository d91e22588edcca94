"""Rule measure_runtime: run every fitted policy through the adaptive runtime on test samples and time it
(batch 1 and a larger batch) beside the full model and the cost model's prediction -> runtime.csv."""

import _eenet_path  # noqa: F401  (src/ importable without an install, e.g. under --sdm conda)
import torch

from eenet.benchmark import open_benchmark
from eenet.costs import read_costs
from eenet.data import DatasetSpec
from eenet.io import load_tensors, read_csv, read_json, write_csv
from eenet.models import load_model
from eenet.runtime import RUNTIME_FIELDS, compare_to_simulation, measure_policies
from eenet.schedulers import StaticScheduler, exit_predictions, scheduler_from_json
from eenet.training import pick_device
from eenet.workflow import data_root, run_metadata, setup_logging

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p = snakemake.params
spec = DatasetSpec.from_manifest(snakemake.input.data)
cfg = p.runtime
log = setup_logging(snakemake.log[0])
torch.set_num_threads(p.threads)
device = pick_device(p.device)
model, meta = load_model(snakemake.input.model, device)
costs_ms, _, _ = read_costs(read_csv(snakemake.input.cost))
tensors, _ = load_tensors(snakemake.input.test)
test = open_benchmark(spec, data_root(snakemake.input.data), str(meta["arch"]), dict(meta.get("arch_kwargs") or {}), p.split,
                      ("test",), max_length=p.max_length)["test"]  # fmt: skip
n = len(test) if cfg["samples"] is None else min(cfg["samples"], len(test))
probs, labels = tensors["probs"][:, :n], tensors["labels"][:n]
if not torch.equal(labels, test.labels[:n]):
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
log.info("%d policies on %d test samples, %d thread(s), %s", len(policies), n, p.threads, run_metadata(device)["device"])

rows = []
for bs in sorted({1, cfg["batch_size"]}):
    batches = [test.inputs(torch.arange(i, min(i + bs, n)), device) for i in range(0, n, bs)]
    res = measure_policies(model, policies, batches, device, cfg["warmup"], cfg["repeats"])
    log.info("batch %d: full model %.4f ms/sample (IQR %.4f-%.4f)", bs, res["full"]["ms"], res["full"]["ms_q1"], res["full"]["ms_q3"])
    for name, sched in policies.items():
        r = res[name]
        cached_exits = sched.assign(probs)
        row = {"bench": snakemake.wildcards.bench, **info[name], "batch_size": bs, "samples": n,
               **compare_to_simulation(r, res["full"], costs_ms, model.num_exits),
               "accuracy": float((r["preds"] == labels).float().mean()),
               "exits_agree": float((r["exits"] == cached_exits).float().mean()),
               "preds_agree": float((r["preds"] == exit_predictions(probs, cached_exits)).float().mean()),
               "threads": p.threads, **run_metadata(device)}  # fmt: skip
        rows.append(row)
        log.info(
            "batch %d %-14s %-5s measured %.4f ms (simulated %.4f, x%.3f), speed-up x%.2f, exits as cached %.4f",
            bs, info[name]["method"], info[name]["budget_value"], row["measured_ms"], row["simulated_ms"],
            row["measured_vs_simulated"], row["speedup_vs_full"], row["exits_agree"],
        )  # fmt: skip
write_csv(snakemake.output[0], [{k: row.get(k, "") for k in RUNTIME_FIELDS} for row in rows], RUNTIME_FIELDS)
