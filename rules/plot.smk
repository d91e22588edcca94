rule plot_curve:
    input:
        evals=eval_files,
        test="results/{bench}/logits/test.safetensors",
        cost="results/{bench}/cost.csv",
        runtime="results/{bench}/runtime.csv",
        stats="results/{bench}/stats.csv",
        code=code("plot_curve.py"),
    output:
        pdf=report(
            "results/{bench}/curve.pdf",
            caption="../workflow/report/curve.rst",
            category="Accuracy vs cost",
        ),
        png="results/{bench}/curve.png",
        runtime_pdf=report(
            "results/{bench}/runtime.pdf",
            caption="../workflow/report/runtime.rst",
            category="Measured latency",
        ),
        summary="results/{bench}/summary.csv",
    params:
        x_axis=lambda w: bench(w)["plot"]["x_axis"],
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


rule compute_stats:
    input:
        evals=eval_files,
        schedulers=scheduler_files,
        test="results/{bench}/logits/test.safetensors",
        code=code("compute_stats.py"),
    output:
        report(
            "results/{bench}/stats.csv",
            caption="../workflow/report/stats.rst",
            category="Statistics",
        ),
    params:
        tolerance=lambda w: bench(w)["budgets"]["tolerance"],
        stats=lambda w: bench(w)["stats"],
    log:
        "logs/{bench}/compute_stats.log",
    conda:
        ENV
    script:
        "../workflow/scripts/compute_stats.py"
