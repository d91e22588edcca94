# Stage 4: the measured cost of each exit and of the plain network -> results/<bench>/cost.csv.
rule profile_latency:
    input:
        model="results/{bench}/model.pt",
        data=dataset_manifest,
        code=code("profile_latency.py"),
    output:
        "results/{bench}/cost.csv",
    log:
        "logs/{bench}/profile_latency.log",
    conda:
        ENV
    # all the cores: nothing else runs while latency is measured
    threads: machine_cores()
    resources:
        gpu=uses_gpu,
    params:
        dataset=lambda w: bench(w)["dataset"],
        profile=lambda w: bench(w)["profile"],
        device=lambda w: bench(w)["device"],
        max_length=lambda w: bench(w)["max_length"],
    script:
        "../workflow/scripts/profile_latency.py"
