"""Rule profile_latency: measured cumulative per-sample latency and FLOPs to each exit -> cost.csv."""

from pathlib import Path

import _eenet_path  # noqa: F401  (src/ importable without an install, e.g. under --sdm conda)
import torch

from eenet.costs import cost_table, count_flops, measure_latency
from eenet.data import DATASETS, load_images, normalize
from eenet.io import write_csv
from eenet.models import load_model
from eenet.training import pick_device
from eenet.workflow import run_metadata, setup_logging

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p = snakemake.params
prof = p.profile
log = setup_logging(snakemake.log[0])
torch.set_num_threads(prof["threads"])
spec = DATASETS[p.dataset]
device = pick_device(p.device)
model, _ = load_model(snakemake.input.model, device)
images, _ = load_images(p.dataset, Path(snakemake.input.data).parent, train=False)
batch = normalize(images[: prof["batch_size"]], spec.mean, spec.std).to(device)
latency = measure_latency(model, batch, prof["warmup"], prof["repeats"])
flops = count_flops(model, batch[:1])
meta = {"batch_size": prof["batch_size"], "repeats": prof["repeats"], "threads": prof["threads"], **run_metadata(device)}
rows = cost_table(latency, flops, meta)
write_csv(snakemake.output[0], rows)
for r in rows:
    log.info(
        "exit %d: %.4f ms/sample (raw median %.4f, IQR %.4f-%.4f), %.3g FLOPs",
        r["exit"],
        r["ms"],
        r["ms_raw"],
        r["ms_q1"],
        r["ms_q3"],
        r["flops"],
    )
log.info("device %s, batch %d, torch %s", meta["device"], prof["batch_size"], meta["torch_version"])
