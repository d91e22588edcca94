# Stage 1: the dataset, fetched and verified -> data/<dataset>/manifest.json.
rule download_dataset:
    output:
        "data/{dataset}/manifest.json",
    input:
        code=code("download_dataset.py"),
    params:
        source=lambda w: DATASETS[w.dataset],
    log:
        "logs/download_dataset/{dataset}.log",
    conda:
        ENV
    script:
        "../workflow/scripts/download_dataset.py"
