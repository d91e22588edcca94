# Stage 7: statistics over test resamples and seeds -> stats.csv (and the seeds' aggregate).
rule compute_stats:
    input:
        evals=eval_files,
        schedulers=scheduler_files,
        test="results/{bench}/logits/test.safetensors",
        cost="results/{bench}/cost.csv",
        runtime="results/{bench}/runtime.csv",
        # frontier.trained: frontier.csv and the test outputs of the networks trained alone (rules/frontier.smk)
        frontier=lambda w: planning.frontier_files(w.bench, bench(w)),
        code=code("compute_stats.py"),
    output:
        report(
            "results/{bench}/stats.csv",
            caption="../workflow/report/stats.rst",
            category="Tables",
        ),
    log:
        "logs/{bench}/compute_stats.log",
    wildcard_constraints:
        bench=RUNS,
    conda:
        ENV
    params:
        tolerance=lambda w: bench(w)["budgets"]["tolerance"],
        stats=lambda w: bench(w)["stats"],
        seed=lambda w: bench(w)["train"]["seed"],
    script:
        "../workflow/scripts/compute_stats.py"


# A benchmark with a list of seeds: its runs (results/<bench>/seed<s>/) aggregated -- every seed's rows and the mean
# in summary.csv, statistics over seeds in stats.csv, the mean curve with the min-max band over seeds.
rule aggregate_seeds:
    input:
        summaries=seed_runs("results/{run}/summary.csv"),
        seed_stats=seed_runs("results/{run}/stats.csv"),
        tests=seed_runs("results/{run}/logits/test.safetensors"),
        # each seed's frontier at its own measured latencies: cost.csv's cuts, runtime.csv, the networks trained alone
        costs=seed_runs("results/{run}/cost.csv"),
        runtimes=seed_runs("results/{run}/runtime.csv"),
        frontier=lambda w: planning.seed_frontier_files(SEEDED[w.bench], BENCHMARKS),
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
    log:
        "logs/{bench}/aggregate_seeds.log",
    wildcard_constraints:
        bench=SEEDED_NAMES,
    conda:
        ENV
    params:
        runs=lambda w: SEEDED[w.bench],
        tolerance=lambda w: seeded_bench(w)["budgets"]["tolerance"],
        stats=lambda w: seeded_bench(w)["stats"],
    script:
        "../workflow/scripts/aggregate_seeds.py"
