"""Rule fit_scheduler: fit one exit policy at each of the benchmark's budgets, on validation only -> one JSON a budget.

With profile.decision_costs (the default), the policy's own decision work per exit is timed here, at cost.csv's batch
size on validation samples with the job's threads, each decision right after the network's own stage has run
(eenet.measure.overhead.network_stages), and every budget is fitted against
cost.csv's costs plus it: the JSON's ``costs`` are those effective costs, ``exit_ms`` cost.csv's, ``decision_ms`` the
overhead per exit."""

from collections.abc import Callable
from functools import cache, partial

import torch

from eenet.data.prepare import open_fetched
from eenet.io import read_csv
from eenet.measure.costs import read_costs, resolve_budget
from eenet.measure.overhead import decision_overhead, effective_costs, network_stages
from eenet.models import load_model
from eenet.pipeline.logs import setup_logging
from eenet.records import read_logits_cache, write_fitted_policy
from eenet.schedulers import fit_budgets

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
w, p = snakemake.wildcards, snakemake.params
log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
tensors, meta = read_logits_cache(snakemake.input.val, split="val")  # schedulers are fitted on validation only
costs_ms, _, cost_meta = read_costs(read_csv(snakemake.input.cost))
budgets_ms = [resolve_budget(b, p.unit, costs_ms) for b in p.budgets]
log.info("fitting %s at budgets %s %s = %s ms/sample (exit costs %s ms)", w.method, p.budgets, p.unit, budgets_ms, costs_ms)
# the benchmark's `eenet:` block configures every EENet variant; an ablation leaves out what it fixes
# "<combiner>+<policy>": the combiner is fitted once and each budget's policy on its probabilities (eenet.schedulers.compose)
# profile.decision_costs: the policy's decision work per exit, timed on a preliminary fit, joins the costs fitted against
batch = int(cost_meta.get("batch_size") or 1)  # cost.csv's costs are per sample at this batch size: so is the overhead
overhead = None
if p.decision_costs:  # timed after the network's own stage k on `batch` validation inputs, as the runtime decides

    @cache
    def stages() -> Callable[[int], object]:  # on the first timed decision: a policy that decides nothing loads nothing
        model, model_meta = load_model(snakemake.input.model, "cpu")
        val = open_fetched(snakemake.input.data, model_meta, p.split, ("val",), max_length=p.max_length)["val"]
        x, _ = next(iter(val.batches(batch, torch.device("cpu"))))
        log.info("decisions timed after the stages of %s on a batch of %d validation inputs", snakemake.input.model, batch)
        return network_stages(model, x)

    overhead = partial(decision_overhead, logits=tensors.get("logits"), probs=tensors["probs"], batch_size=batch,
                       stage=lambda k: stages()(k))  # fmt: skip
    if not str(cost_meta.get("device") or "cpu").startswith("cpu"):
        log.warning("cost.csv was measured on %s; the decision overhead is timed on this job's CPU", cost_meta.get("device"))
fitted = fit_budgets(w.method, p.hyper, tensors["probs"], tensors.get("logits"), tensors["labels"], costs_ms, budgets_ms, overhead)
decision_ms = next((s.decision_ms_ for s in fitted if hasattr(s, "decision_ms_")), None)
if decision_ms is not None:
    effective = [round(c, 5) for c in effective_costs(costs_ms, decision_ms)]
    log.info("decision overhead of %s per exit %s ms (batch %d, %d threads): fitted against effective costs %s ms", w.method,
             [round(d, 5) for d in decision_ms], batch, torch.get_num_threads(), effective)  # fmt: skip
for value, budget_ms, sched, path in zip(p.budgets, budgets_ms, fitted, snakemake.output, strict=True):
    if isinstance(sched, Exception):
        log.warning("%s at %s: infeasible: %s", w.method, value, sched)
    else:
        log.info("%s at %s: validation accuracy %.4f at realised cost %.4f ms (budget %.4f)", w.method, value,
                 sched.val_accuracy_, sched.val_cost_, budget_ms)  # fmt: skip
    # with decision costs the policy's `costs` are exit_ms plus the decisions at exits 0..k (a fallen-back EENet: its fallback's)
    write_fitted_policy(path, sched, bench=w.bench, method=w.method, budget_value=value, budget_unit=p.unit, budget_ms=budget_ms,
                        exit_ms=costs_ms, device=cost_meta.get("device"), logits_model_sha256=meta["model_sha256"],
                        decision_ms=None if decision_ms is None else getattr(sched, "decision_ms_", decision_ms))  # fmt: skip
