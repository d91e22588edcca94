# Stage 1: the dataset, fetched and verified -> data/<dataset>/manifest.json.
rule download_dataset:
    input:
        code=code("download_dataset.py"),
    output:
        "data/{dataset}/manifest.json",
    log:
        "logs/download_dataset/{dataset}.log",
    conda:
        ENV
    params:
        source=lambda w: DATASETS[w.dataset],
    script:
        "../workflow/scripts/download_dataset.py"
