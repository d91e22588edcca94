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
        summary=report(
            "results/{bench}/summary.csv",
            caption="../workflow/report/summary.rst",
            category="Tables",
        ),
    wildcard_constraints:
        bench=RUNS,
    params:
        x_axis=lambda w: bench(w)["plot"]["x_axis"],
        seed=lambda w: bench(w)["train"]["seed"],
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
        name="(?!(?:" + "|".join([*BENCHMARKS, *SEEDED]) + ")/)[^/]+",
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
            category="Tables",
        ),
    wildcard_constraints:
        bench=RUNS,
    params:
        tolerance=lambda w: bench(w)["budgets"]["tolerance"],
        stats=lambda w: bench(w)["stats"],
        seed=lambda w: bench(w)["train"]["seed"],
    log:
        "logs/{bench}/compute_stats.log",
    conda:
        ENV
    script:
        "../workflow/scripts/compute_stats.py"


# A benchmark with a list of seeds: its runs (results/<bench>/seed<s>/) aggregated -- every seed's rows and the mean
# in summary.csv, statistics over seeds in stats.csv, the mean curve with the min-max band over seeds.
rule aggregate_seeds:
    input:
        summaries=seed_runs("results/{run}/summary.csv"),
        tests=seed_runs("results/{run}/logits/test.safetensors"),
        evals=seed_policies("results/{run}/eval/{method}/{budget}.json"),
        schedulers=seed_policies("results/{run}/schedulers/{method}/{budget}.json"),
        code=code("aggregate_seeds.py"),
    output:
        pdf=report(
            "results/{bench}/curve.pdf",
            caption="../workflow/report/seeds.rst",
            category="Accuracy vs cost",
        ),
        png="results/{bench}/curve.png",
        summary=report(
            "results/{bench}/summary.csv",
            caption="../workflow/report/summary.rst",
            category="Tables",
        ),
        stats=report(
            "results/{bench}/stats.csv",
            caption="../workflow/report/stats.rst",
            category="Tables",
        ),
    wildcard_constraints:
        bench=SEEDED_NAMES,
    params:
        runs=lambda w: SEEDED[w.bench],
        tolerance=lambda w: seeded_bench(w)["budgets"]["tolerance"],
        stats=lambda w: seeded_bench(w)["stats"],
    log:
        "logs/{bench}/aggregate_seeds.log",
    conda:
        ENV
    script:
        "../workflow/scripts/aggregate_seeds.py"


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
    wildcard_constraints:
        bench=RUNS,
    params:
        dataset=lambda w: bench(w)["dataset"],
        method=lambda w: example_policy(w)[0],
        budget=lambda w: example_policy(w)[1],
        per_exit=lambda w: bench(w)["examples"]["per_exit"],
    log:
        "logs/{bench}/exit_analysis.log",
    conda:
        ENV
    script:
        "../workflow/scripts/exit_analysis.py"


# summary.csv and stats.csv as HTML tables, for the Snakemake report (make report) to show inline.
rule report_tables:
    input:
        summary="results/{bench}/summary.csv",
        stats="results/{bench}/stats.csv",
        code=code("report_tables.py"),
    output:
        report(
            "results/{bench}/tables.html",
            caption="../workflow/report/tables.rst",
            category="Tables",
        ),
    log:
        "logs/{bench}/report_tables.log",
    localrule: True
    conda:
        ENV
    script:
        "../workflow/scripts/report_tables.py"
