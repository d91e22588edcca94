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
