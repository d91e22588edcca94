# Stage 5: each policy fitted per budget on validation, evaluated on test -> schedulers/, evaluations/.
rule fit_scheduler:
    input:
        val="results/{bench}/logits/val.safetensors",
        cost="results/{bench}/cost.csv",
        code=code("fit_scheduler.py"),
    output:
        "results/{bench}/schedulers/{method}/{budget}.json",
    params:
        unit=lambda w: bench(w)["budgets"]["unit"],
        hyper=method_params,
    log:
        "logs/{bench}/fit_scheduler/{method}/{budget}.log",
    conda:
        ENV
    script:
        "../workflow/scripts/fit_scheduler.py"


rule evaluate_test:
    input:
        scheduler="results/{bench}/schedulers/{method}/{budget}.json",
        test="results/{bench}/logits/test.safetensors",
        cost="results/{bench}/cost.csv",
        code=code("evaluate_test.py"),
    output:
        "results/{bench}/eval/{method}/{budget}.json",
    params:
        tolerance=lambda w: bench(w)["budgets"]["tolerance"],
    log:
        "logs/{bench}/evaluate_test/{method}/{budget}.log",
    conda:
        ENV
    script:
        "../workflow/scripts/evaluate_test.py"
