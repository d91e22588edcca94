rule plot_curve:
    input:
        evals=eval_files,
        test="results/{bench}/logits/test.safetensors",
        cost="results/{bench}/cost.csv",
        code=code("plot_curve.py"),
    output:
        pdf=report(
            "results/{bench}/curve.pdf",
            caption="../workflow/report/curve.rst",
            category="Accuracy vs cost",
        ),
        png="results/{bench}/curve.png",
        summary="results/{bench}/summary.csv",
    log:
        "logs/{bench}/plot_curve.log",
    conda:
        ENV
    script:
        "../workflow/scripts/plot_curve.py"


# Any results/<name>/... target whose <name> is not a benchmark of the config ends here, before any job,
# with a message that lists the benchmarks that exist.
rule unknown_benchmark:
    input:
        unknown_benchmark,
    output:
        "results/{name}/{anything}",
    wildcard_constraints:
        name="(?!(?:" + "|".join(BENCHMARKS) + ")/)[^/]+",
        anything=".+",
    log:
        "logs/unknown_benchmark/{name}/{anything}.log",
    localrule: True
    conda:
        ENV
    shell:
        "false"
