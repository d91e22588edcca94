# Stage 2: the multi-exit network, trained (resumable) -> results/<bench>/model.pt.
rule train_multiexit:
    input:
        data=dataset_manifest,
        code=code("train_multiexit.py"),
    output:
        model="results/{bench}/model.pt",
        metrics="results/{bench}/train_metrics.csv",
    log:
        "logs/{bench}/train_multiexit.log",
    conda:
        ENV
    threads: 2
    resources:
        gpu=training_gpus,
        # several ranks (train.processes x train.nodes): one SLURM job over train.nodes nodes with a task and a GPU per
        # rank, whose script starts the ranks with srun (mpi: the job step does not wrap the script in a one-task
        # srun); one task otherwise
        tasks=training_ranks,
        tasks_per_gpu=1,
        nodes=lambda w: bench(w)["train"]["nodes"],
        mpi=lambda w: "srun" if training_ranks(w) > 1 else "",
    params:
        dataset=lambda w: bench(w)["dataset"],
        arch=lambda w: bench(w)["arch"],
        arch_kwargs=lambda w: bench(w)["arch_kwargs"],
        split=lambda w: bench(w)["split"],
        train=lambda w: bench(w)["train"],
        device=lambda w: bench(w)["device"],
        max_length=lambda w: bench(w)["max_length"],
        checkpoint=lambda w: f"results/{w.bench}/checkpoint/last.pt",
    script:
        "../workflow/scripts/train_multiexit.py"
