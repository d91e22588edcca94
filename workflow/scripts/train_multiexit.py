"""Rule train_multiexit: train the benchmark's multi-exit network (resumable), write model + metrics.

One process by default; with ``train.processes`` x ``train.nodes`` > 1, data-parallel ranks started with torchrun (or
srun inside a SLURM allocation), each running the same training (eenet.pipeline.trainjob), rank 0 writing the outputs.
"""

from pathlib import Path

from eenet.io import write_json
from eenet.pipeline.logs import setup_logging
from eenet.pipeline.runs import world_size
from eenet.pipeline.trainjob import run_training
from eenet.training.distributed import launch

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p = snakemake.params
job = {
    "dataset": p.dataset, "arch": p.arch, "arch_kwargs": dict(p.arch_kwargs), "split": dict(p.split), "train": dict(p.train),
    "device": p.device, "max_length": p.max_length, "checkpoint": p.checkpoint, "data": snakemake.input.data,
    "log": snakemake.log[0], "threads": snakemake.threads,
    "model": snakemake.output.model, "metrics": snakemake.output.metrics,
}  # fmt: skip
if world_size(p.train) == 1:
    run_training(job)
else:
    Path(snakemake.log[0]).parent.mkdir(parents=True, exist_ok=True)
    Path(snakemake.log[0]).write_text("")  # then every writer appends: this process and rank 0 share the file
    setup_logging(snakemake.log[0], append=True)
    job_file = Path(p.checkpoint).with_name("job.json")  # what every rank reads
    write_json(job_file, job)
    launch(job_file, p.train["processes"], p.train["nodes"], snakemake.threads, "eenet.pipeline.trainjob", checkpoint=p.checkpoint)
