# The plain-network frontier with networks trained alone (frontier.trained; eenet.pipeline.planning.frontier_networks):
# each trained with the run's recipe -> results/<run>/frontier/<net>/model.pt, its outputs cached, and all of them timed
# beside the multi-exit network's cuts in one interleaved run -> results/<run>/frontier.csv, which compute_stats and
# plot_curve read (planning.frontier_files). Without frontier.trained the frontier is cost.csv's cuts and none of these run.


# A network of the frontier trained alone with the run's recipe (the train_multiexit script, another arch_kwargs).
rule train_frontier:
    input:
        data=dataset_manifest,
        code=code("train_multiexit.py"),
    output:
        model="results/{bench}/frontier/{net}/model.pt",
        metrics="results/{bench}/frontier/{net}/train_metrics.csv",
    log:
        "logs/{bench}/frontier/{net}/train_frontier.log",
    wildcard_constraints:
        bench=RUNS,
        net=planning.FRONTIER_PATTERN,
    conda:
        ENV
    threads: 2
    resources:
        gpu=training_gpus,
        tasks=training_ranks,
        tasks_per_gpu=1,
        nodes=lambda w: bench(w)["train"]["nodes"],
        mpi=lambda w: "srun" if training_ranks(w) > 1 else "",
    params:
        dataset=lambda w: bench(w)["dataset"],
        arch=lambda w: bench(w)["arch"],
        arch_kwargs=lambda w: planning.frontier_kwargs(w.bench, bench(w), w.net),
        split=lambda w: bench(w)["split"],
        train=lambda w: bench(w)["train"],
        device=lambda w: bench(w)["device"],
        max_length=lambda w: bench(w)["max_length"],
        checkpoint=lambda w: f"results/{w.bench}/frontier/{w.net}/checkpoint/last.pt",
    script:
        "../workflow/scripts/train_multiexit.py"


# Its outputs on validation and test, cached as cache_logits caches the multi-exit network's (one exit).
rule frontier_logits:
    input:
        model="results/{bench}/frontier/{net}/model.pt",
        data=dataset_manifest,
        code=code("cache_logits.py"),
    output:
        val="results/{bench}/frontier/{net}/logits/val.safetensors",
        test="results/{bench}/frontier/{net}/logits/test.safetensors",
    log:
        "logs/{bench}/frontier/{net}/frontier_logits.log",
    wildcard_constraints:
        bench=RUNS,
        net=planning.FRONTIER_PATTERN,
    conda:
        ENV
    threads: 2
    resources:
        gpu=uses_gpu,
    params:
        dataset=lambda w: bench(w)["dataset"],
        split=lambda w: bench(w)["split"],
        device=lambda w: bench(w)["device"],
        batch_size=lambda w: bench(w)["train"]["eval_batch_size"],
        max_length=lambda w: bench(w)["max_length"],
    script:
        "../workflow/scripts/cache_logits.py"


# Every network of the frontier, the cuts and those trained alone, timed in one interleaved run -> frontier.csv.
rule frontier_cost:
    input:
        model="results/{bench}/model.pt",
        networks=lambda w: planning.frontier_models(w.bench, bench(w)),
        data=dataset_manifest,
        code=code("frontier_cost.py"),
    output:
        "results/{bench}/frontier.csv",
    log:
        "logs/{bench}/frontier_cost.log",
    wildcard_constraints:
        bench=RUNS,
    conda:
        ENV
    # all the cores: nothing else runs while latency is measured
    threads: machine_cores()
    resources:
        gpu=uses_gpu,
    params:
        profile=lambda w: bench(w)["profile"],
        device=lambda w: bench(w)["device"],
        max_length=lambda w: bench(w)["max_length"],
    script:
        "../workflow/scripts/frontier_cost.py"
