# Stage 8: the figures -> curve.pdf, runtime.pdf, summary.csv; examples.pdf (the exit analysis).
rule plot_curve:
    input:
        evals=eval_files,
        test="results/{bench}/logits/test.safetensors",
        cost="results/{bench}/cost.csv",
        runtime="results/{bench}/runtime.csv",
        stats="results/{bench}/stats.csv",
        # frontier.trained: frontier.csv and the test outputs of the networks trained alone (rules/frontier.smk)
        frontier=lambda w: planning.frontier_files(w.bench, bench(w)),
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
        summary=report(
            "results/{bench}/summary.csv",
            caption="../workflow/report/summary.rst",
            category="Tables",
        ),
    log:
        "logs/{bench}/plot_curve.log",
    wildcard_constraints:
        bench=RUNS,
    conda:
        ENV
    params:
        x_axis=lambda w: bench(w)["plot"]["x_axis"],
        seed=lambda w: bench(w)["train"]["seed"],
    script:
        "../workflow/scripts/plot_curve.py"


# The paper's visual analysis: where test samples leave under every policy, and which ones under one policy.
rule exit_analysis:
    input:
        schedulers=scheduler_files,
        test="results/{bench}/logits/test.safetensors",
        data=dataset_manifest,
        code=code("exit_analysis.py"),
    output:
        exits=report(
            "results/{bench}/exits.csv",
            caption="../workflow/report/exits.rst",
            category="Where samples leave",
        ),
        examples="results/{bench}/examples.csv",
        pdf=report(
            "results/{bench}/examples.pdf",
            caption="../workflow/report/examples.rst",
            category="Where samples leave",
        ),
    log:
        "logs/{bench}/exit_analysis.log",
    wildcard_constraints:
        bench=RUNS,
    conda:
        ENV
    params:
        dataset=lambda w: bench(w)["dataset"],
        method=lambda w: example_policy(w)[0],
        budget=lambda w: example_policy(w)[1],
        per_exit=lambda w: bench(w)["examples"]["per_exit"],
    script:
        "../workflow/scripts/exit_analysis.py"
