# Stage 5: each policy fitted at every budget on validation, evaluated on test -> schedulers/, eval/.
# One job per (run, policy) does all the budgets: starting a job (importing torch) costs more than fitting most
# policies, and the job times the policy's decision work once for all its budgets (a combiner is fitted once too).
# Its outputs are the budget files results/{bench}/{schedulers,eval}/{method}/{budget}.json, and how many outputs a rule
# has is fixed when it is parsed (Snakemake refuses output functions: "Only input files can be specified as functions"),
# so there is one rule pair per distinct list of budgets in the config (common.smk's BUDGET_SETS): fit_scheduler and
# evaluate_test for the first benchmark's list, fit_scheduler_2, evaluate_test_2 ... for the others; the same code.
# Kept on purpose (issue 32; each alternative tried on config/config.yaml's 850 jobs, docs/design.md says more):
#  - one rule with directory("results/{bench}/schedulers/{method}") and .../eval/{method}: the same 850 jobs, but 702
#    of them make a folder instead of 3,364 budget files, so a budget file is no target (MissingRuleException for
#    `snakemake results/tiny/schedulers/maxpred/0.5.json`), dvc.yaml and the lineage track folders, and the six
#    scripts after these would have to read folders;
#  - a checkpoint: those folders, and the dry run and dvc.yaml no longer see the inputs after it (<TBD>);
#  - one rule, a job per budget: 2,662 more jobs, each starting Python and torch (3.6 s here) and timing anew;
#  - the list of budgets in the path: other files.
for _i, (_budgets, _runs) in enumerate(BUDGET_SETS.items()):
    _suffix = f"_{_i + 1}" if _i else ""

    rule:
        name:
            f"fit_scheduler{_suffix}"
        input:
            val="results/{bench}/logits/val.safetensors",
            cost="results/{bench}/cost.csv",
            # the decision overhead is timed after the network's own stages (eenet.measure.overhead.network_stages)
            model="results/{bench}/model.pt",
            data=dataset_manifest,
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
            split=lambda w: bench(w)["split"],
            max_length=lambda w: bench(w)["max_length"],
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
