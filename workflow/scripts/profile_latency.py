"""Rule profile_latency: measured cumulative per-sample latency and FLOPs to each exit, and of the plain network
(stages + last head, timed in the same run) -> cost.csv (eenet.measure.costs.measure_costs)."""

import torch

from eenet.data.prepare import open_fetched
from eenet.io import write_csv
from eenet.measure.costs import NoisyMeasurementError, log_costs, measure_costs
from eenet.models import load_model
from eenet.pipeline.logs import run_metadata, setup_logging
from eenet.training.inference import pick_device

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p, prof = snakemake.params, snakemake.params.profile
log = setup_logging(snakemake.log[0])
torch.set_num_threads(prof["threads"])
device = pick_device(p.device)
model, meta = load_model(snakemake.input.model, device)
test = open_fetched(snakemake.input.data, meta, None, ("test",), max_length=p.max_length)["test"]
try:
    rows, spreads = measure_costs(model, test, prof, device, run_metadata(device))
except NoisyMeasurementError as exc:
    raise NoisyMeasurementError(
        f"{exc}. Nothing was written. Re-run when the machine is idle: snakemake --forcerun profile_latency "
        f"{snakemake.output[0]}; or raise benchmarks.{snakemake.wildcards.bench}.profile.repeats (now {prof['repeats']}) "
        f"or .max_spread (now {prof['max_spread']}) in the config"
    ) from None
write_csv(snakemake.output[0], rows)
log_costs(log, rows, spreads)
