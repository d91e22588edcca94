"""Rule profile_latency: measured cumulative per-sample latency and FLOPs to each exit, and of the plain network
(stages + last head, timed in the same run) -> cost.csv."""

import torch

from eenet.data import DatasetSpec
from eenet.data.prepare import open_benchmark
from eenet.io import write_csv
from eenet.measure.costs import NoisyMeasurementError, check_spread, cost_table, count_flops, count_plain_flops, profile_costs
from eenet.models import load_model
from eenet.pipeline.logs import data_root, run_metadata, setup_logging
from eenet.training.inference import pick_device

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p = snakemake.params
spec = DatasetSpec.from_manifest(snakemake.input.data)
prof = p.profile
log = setup_logging(snakemake.log[0])
torch.set_num_threads(prof["threads"])
device = pick_device(p.device)
model, meta = load_model(snakemake.input.model, device)
test = open_benchmark(spec, data_root(snakemake.input.data), str(meta["arch"]), dict(meta.get("arch_kwargs") or {}),
                      None, ("test",), max_length=p.max_length)["test"]  # fmt: skip
n = min(prof["batch_size"], len(test))
# distinct test samples, a stream of new inputs as inference sees them
batches = [test.inputs(torch.arange(i, i + n), device) for i in range(0, min(len(test) - n + 1, prof["samples"]), n)]
latency, plain = profile_costs(model, batches, prof["warmup"], prof["repeats"])
try:
    spreads = check_spread([*latency, plain], prof["max_spread"])
except NoisyMeasurementError as exc:
    raise NoisyMeasurementError(
        f"{exc}. Nothing was written. Re-run when the machine is idle: snakemake --forcerun profile_latency "
        f"{snakemake.output[0]}; or raise benchmarks.{snakemake.wildcards.bench}.profile.repeats (now {prof['repeats']}) "
        f"or .max_spread (now {prof['max_spread']}) in the config"
    ) from None
one = test.inputs(torch.arange(1), device)
flops, plain_flops = count_flops(model, one), count_plain_flops(model, one)
info = {"batch_size": n, "samples": len(batches) * n, "repeats": prof["repeats"], "threads": prof["threads"], **run_metadata(device)}
rows = cost_table(latency, flops, info, plain, plain_flops)
write_csv(snakemake.output[0], rows)
for r in rows:
    log.info(
        "exit %d: %.4f ms/sample (measured %.4f, IQR of passes %.4f-%.4f), %.3g FLOPs",
        r["exit"],
        r["ms"],
        r["ms_raw"],
        r["ms_q1"],
        r["ms_q3"],
        r["flops"],
    )
log.info("plain network (stages + last head): %.4f ms/sample (IQR %.4f-%.4f), %.3g FLOPs; %.3f of the last exit's cost "
         "(a budget fraction is a fraction of the last exit's cost)", plain["ms"], plain["ms_q1"], plain["ms_q3"], plain_flops,
         plain["ms"] / rows[-1]["ms"])  # fmt: skip
log.info("device %s, batch %d, torch %s; spread (IQR / median) per exit %s, plain %.3f", info["device"], n, info["torch_version"],
         " ".join(f"{s:.3f}" for s in spreads[:-1]), spreads[-1])  # fmt: skip
