# Stage 3: every exit's outputs on validation and test, cached -> results/<bench>/logits/.
rule cache_logits:
    input:
        model="results/{bench}/model.pt",
        data=dataset_manifest,
        code=code("cache_logits.py"),
    output:
        val="results/{bench}/logits/val.safetensors",
        test="results/{bench}/logits/test.safetensors",
    log:
        "logs/{bench}/cache_logits.log",
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
