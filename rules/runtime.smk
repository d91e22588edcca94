# Stage 6: the fitted policies run for real by the adaptive runtime, timed -> runtime.csv.
rule measure_runtime:
    input:
        schedulers=scheduler_files,
        model="results/{bench}/model.pt",
        data=dataset_manifest,
        cost="results/{bench}/cost.csv",
        test="results/{bench}/logits/test.safetensors",
        code=code("measure_runtime.py"),
    output:
        "results/{bench}/runtime.csv",
    log:
        "logs/{bench}/measure_runtime.log",
    conda:
        ENV
    # all the cores: nothing else runs while latency is measured
    threads: machine_cores()
    resources:
        gpu=uses_gpu,
    params:
        dataset=lambda w: bench(w)["dataset"],
        split=lambda w: bench(w)["split"],
        device=lambda w: bench(w)["device"],
        max_length=lambda w: bench(w)["max_length"],
        runtime=lambda w: bench(w)["runtime"],
        # the profile's threads: measured and simulated costs come from the same setting
        threads=lambda w: bench(w)["profile"]["threads"],
    script:
        "../workflow/scripts/measure_runtime.py"


# compiled.methods: those policies as AOTInductor-compiled segments and every cut of the network compiled alike, timed
# at batch 1 beside their eager runs -> compiled.csv (not part of curve.pdf's chain; `snakemake all` asks for it).
rule measure_compiled:
    input:
        schedulers=compiled_scheduler_files,
        model="results/{bench}/model.pt",
        data=dataset_manifest,
        cost="results/{bench}/cost.csv",
        test="results/{bench}/logits/test.safetensors",
        code=code("measure_compiled.py"),
    output:
        "results/{bench}/compiled.csv",
    log:
        "logs/{bench}/measure_compiled.log",
    conda:
        ENV
    # all the cores: nothing else runs while latency is measured
    threads: machine_cores()
    params:
        split=lambda w: bench(w)["split"],
        compiled=lambda w: bench(w)["compiled"],
        runtime=lambda w: bench(w)["runtime"],
        threads=lambda w: bench(w)["profile"]["threads"],
    script:
        "../workflow/scripts/measure_compiled.py"
