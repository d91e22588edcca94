# Stage 5: each policy fitted at every budget on validation, evaluated on test -> schedulers/, evaluations/.
# One job per (run, policy) does all the budgets: starting a job (importing torch) costs more than fitting most
# policies. A rule's outputs cannot depend on its wildcards, so there is one rule per list of budgets in the config
# (common.smk's BUDGET_SETS): fit_scheduler and evaluate_test for the first benchmark's, fit_scheduler_2 ... for others.
for _i, (_budgets, _runs) in enumerate(BUDGET_SETS.items()):
    _suffix = f"_{_i + 1}" if _i else ""

    rule:
        name:
            f"fit_scheduler{_suffix}"
        input:
            val="results/{bench}/logits/val.safetensors",
            cost="results/{bench}/cost.csv",
            code=code("fit_scheduler.py"),
        output:
            expand(
                "results/{{bench}}/schedulers/{{method}}/{budget}.json",
                budget=_budgets,
            ),
        log:
            "logs/{bench}/fit_scheduler/{method}.log",
        wildcard_constraints:
            bench=runs_pattern(_runs),
        group:
            "schedulers"
        conda:
            ENV
        resources:
            mem_mb=1500,
            runtime=30 * len(_budgets),  # minutes on a cluster; an EENet fit of 50,000 samples takes a few
        params:
            unit=lambda w: bench(w)["budgets"]["unit"],
            budgets=[float(b) for b in _budgets],
            hyper=method_params,
            # time each policy's own decision work per exit and fit against cost.csv plus it (eenet.measure.overhead)
            decision_costs=lambda w: bench(w)["profile"]["decision_costs"],
        script:
            "../workflow/scripts/fit_scheduler.py"

    rule:
        name:
            f"evaluate_test{_suffix}"
        input:
            schedulers=expand(
                "results/{{bench}}/schedulers/{{method}}/{budget}.json",
                budget=_budgets,
            ),
            test="results/{bench}/logits/test.safetensors",
            cost="results/{bench}/cost.csv",
            code=code("evaluate_test.py"),
        output:
            expand("results/{{bench}}/eval/{{method}}/{budget}.json", budget=_budgets),
        log:
            "logs/{bench}/evaluate_test/{method}.log",
        wildcard_constraints:
            bench=runs_pattern(_runs),
        group:
            "schedulers"
        conda:
            ENV
        resources:
            mem_mb=1500,
            runtime=10,
        params:
            tolerance=lambda w: bench(w)["budgets"]["tolerance"],
        script:
            "../workflow/scripts/evaluate_test.py"
