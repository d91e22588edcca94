# How often does each policy break its budget on data it was not fitted on? The cached validation + test outputs
# re-split many times (eenet.analysis.reliability); not part of curve.pdf's chain (`snakemake results/<bench>/reliability.pdf`).
rule reliability:
    input:
        val="results/{bench}/logits/val.safetensors",
        test="results/{bench}/logits/test.safetensors",
        cost="results/{bench}/cost.csv",
        code=code("reliability.py"),
    output:
        csv=report(
            "results/{bench}/reliability.csv",
            caption="../workflow/report/reliability.rst",
            category="Reliability",
        ),
        pdf=report(
            "results/{bench}/reliability.pdf",
            caption="../workflow/report/reliability.rst",
            category="Reliability",
        ),
        png="results/{bench}/reliability.png",
    log:
        "logs/{bench}/reliability.log",
    wildcard_constraints:
        bench=RUNS,
    conda:
        ENV
    threads: lambda w: bench(w)["reliability"]["workers"]
    params:
        unit=lambda w: bench(w)["budgets"]["unit"],
        budgets=lambda w: bench(w)["budgets"]["values"],
        tolerance=lambda w: bench(w)["budgets"]["tolerance"],
        methods=study_methods,
        study=lambda w: bench(w)["reliability"],
        guarantee=lambda w: bench(w)["guarantee"],
    script:
        "../workflow/scripts/reliability.py"
