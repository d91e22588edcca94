"""Rule frontier_cost: the plain-network frontier's networks -- the multi-exit network cut after each exit and each
network trained alone -- timed in one interleaved run, with their FLOPs -> frontier.csv
(eenet.measure.frontier.measure_frontier)."""

from pathlib import Path

import torch

from eenet.data.prepare import open_fetched
from eenet.io import write_csv
from eenet.measure.costs import NoisyMeasurementError
from eenet.measure.frontier import measure_frontier
from eenet.models import load_model
from eenet.pipeline.logs import run_metadata, setup_logging
from eenet.training.inference import pick_device

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p, prof = snakemake.params, snakemake.params.profile
log = setup_logging(snakemake.log[0])
torch.set_num_threads(prof["threads"])
device = pick_device(p.device)
model, meta = load_model(snakemake.input.model, device)
# each network trained alone: results/<run>/frontier/<name>/model.pt
networks = {Path(f).parent.name: load_model(f, device)[0] for f in snakemake.input.networks}
test = open_fetched(snakemake.input.data, meta, None, ("test",), max_length=p.max_length)["test"]
try:
    rows, spreads = measure_frontier(model, networks, test, prof, device, run_metadata(device))
except NoisyMeasurementError as exc:
    raise NoisyMeasurementError(
        f"{exc}. Nothing was written. Re-run when the machine is idle: snakemake --forcerun frontier_cost {snakemake.output[0]}; "
        f"or raise benchmarks.{snakemake.wildcards.bench}.profile.repeats (now {prof['repeats']}) or .max_spread "
        f"(now {prof['max_spread']}) in the config"
    ) from None
write_csv(snakemake.output[0], rows)  # FRONTIER_COST_FIELDS, then the measurement's own
for r, s in zip(rows, spreads, strict=True):
    log.info("%-10s %.4f ms/sample (IQR of passes %.4f-%.4f, spread %.3f), %.3g FLOPs, %d parameters", r["network"], r["ms"],
             r["ms_q1"], r["ms_q3"], s, r["flops"], r["parameters"])  # fmt: skip
log.info("device %s, batch %d, %d samples, torch %s", rows[0].get("device"), rows[0]["batch_size"], rows[0]["samples"],
         rows[0].get("torch_version"))  # fmt: skip
