rule train_multiexit:
    input:
        data=dataset_manifest,
        code=code("train_multiexit.py"),
        checked=checked_arch,
    output:
        model="results/{bench}/model.pt",
        metrics="results/{bench}/train_metrics.csv",
    params:
        dataset=lambda w: bench(w)["dataset"],
        arch=lambda w: bench(w)["arch"],
        arch_kwargs=lambda w: bench(w)["arch_kwargs"],
        split=lambda w: bench(w)["split"],
        train=lambda w: bench(w)["train"],
        device=lambda w: bench(w)["device"],
        max_length=lambda w: bench(w)["max_length"],
        checkpoint=lambda w: f"results/{w.bench}/checkpoint/last.pt",
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
    log:
        "logs/{bench}/train_multiexit.log",
    conda:
        ENV
    script:
        "../workflow/scripts/train_multiexit.py"


rule cache_logits:
    input:
        model="results/{bench}/model.pt",
        data=dataset_manifest,
        code=code("cache_logits.py"),
    output:
        val="results/{bench}/logits/val.safetensors",
        test="results/{bench}/logits/test.safetensors",
    params:
        dataset=lambda w: bench(w)["dataset"],
        split=lambda w: bench(w)["split"],
        device=lambda w: bench(w)["device"],
        batch_size=lambda w: bench(w)["train"]["eval_batch_size"],
        max_length=lambda w: bench(w)["max_length"],
    threads: 2
    resources:
        gpu=uses_gpu,
    log:
        "logs/{bench}/cache_logits.log",
    conda:
        ENV
    script:
        "../workflow/scripts/cache_logits.py"


rule profile_latency:
    input:
        model="results/{bench}/model.pt",
        data=dataset_manifest,
        code=code("profile_latency.py"),
    output:
        "results/{bench}/cost.csv",
    params:
        dataset=lambda w: bench(w)["dataset"],
        profile=lambda w: bench(w)["profile"],
        device=lambda w: bench(w)["device"],
        max_length=lambda w: bench(w)["max_length"],
    # all the cores: nothing else runs while latency is measured
    threads: machine_cores()
    resources:
        gpu=uses_gpu,
    log:
        "logs/{bench}/profile_latency.log",
    conda:
        ENV
    script:
        "../workflow/scripts/profile_latency.py"
