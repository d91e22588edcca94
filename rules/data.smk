rule download_dataset:
    output:
        "data/{dataset}/manifest.json",
    input:
        code("download_dataset.py"),
    params:
        mirror=lambda w: config["datasets"].get(w.dataset, {}).get("mirror"),
    log:
        "logs/download_dataset/{dataset}.log",
    conda:
        ENV
    script:
        "../workflow/scripts/download_dataset.py"
