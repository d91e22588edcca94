"""Rule reliability: every policy (combined ones with the raw logits) fitted and evaluated on re-splits of validation +
test -> reliability.csv, .pdf, .png."""

import torch

from eenet.analysis.reliability import RELIABILITY_FIELDS, plot_reliability, reliability_rows, reliability_study
from eenet.catalog import METHODS, split_method
from eenet.io import read_csv, write_csv
from eenet.measure.costs import read_costs, resolve_budget
from eenet.pipeline.logs import setup_logging
from eenet.records import read_logits_cache


def main(snakemake) -> None:  # noqa: ANN001  (the object Snakemake injects)
    p, bench = snakemake.params, snakemake.wildcards.bench
    log = setup_logging(snakemake.log[0])
    torch.set_num_threads(1)
    val, val_meta = read_logits_cache(snakemake.input.val, split="val")
    test, test_meta = read_logits_cache(snakemake.input.test, split="test")
    if val_meta["model_sha256"] != test_meta["model_sha256"]:
        raise ValueError(f"{snakemake.input.val} and {snakemake.input.test} come from different models")
    costs_ms, _, cost_meta = read_costs(read_csv(snakemake.input.cost))
    budgets = {float(v): resolve_budget(float(v), p.unit, costs_ms) for v in p.budgets}
    study = p.study
    # EENet and its ablations, alone or after a combiner
    slow = {m: study["eenet_resplits"] for m in p.methods if METHODS[split_method(m)[1]]["config"] == "eenet"}
    combined = [m for m in p.methods if split_method(m)[0] is not None]
    if combined and ("logits" not in val or "logits" not in test):
        raise ValueError(
            f"{', '.join(combined)} need the raw logits of every exit; the cache has none: re-run snakemake --forcerun cache_logits"
        )
    logits = (val["logits"], test["logits"]) if combined else None
    loss = p.guarantee.get("accuracy_loss", {}).get("loss", "disagree")
    log.info("%d re-splits (EENet: %d) of %d validation + %d test samples; policies %s; budgets %s ms; %d worker(s)",
             study["resplits"], study["eenet_resplits"], val["labels"].numel(), test["labels"].numel(), ", ".join(p.methods),
             budgets, snakemake.threads)  # fmt: skip
    results = reliability_study((val["probs"], val["labels"]), (test["probs"], test["labels"]), costs_ms, budgets, dict(p.methods),
                                study["resplits"], study["seed"], slow, snakemake.threads, log, logits, loss)  # fmt: skip
    rows = reliability_rows(bench, results, budgets, p.tolerance, p.guarantee)
    write_csv(snakemake.output.csv, rows, RELIABILITY_FIELDS)
    for r in rows:
        log.info("%-26s %-5s over budget %s of %d fitted, accuracy %s, price %s, accuracy loss %s", r["method"], r["budget_value"],
                 r.get("violation_rate", ""), r["fitted"], r.get("accuracy_mean", ""), r.get("accuracy_price", ""),
                 r.get("loss_mean", ""))  # fmt: skip
    delta = None if "accuracy_loss" in p.guarantee else p.guarantee.get("cost", {}).get("delta", 0.05)
    title = (f"{bench}: share of {study['resplits']} re-splits (EENet: {study['eenet_resplits']}) whose realised cost exceeds the budget\n"
             f"costs measured on {cost_meta.get('device')}; bars: Wilson 95 % intervals; dotted: δ of the cost guarantee")  # fmt: skip
    plot_reliability(rows, title, [snakemake.output.pdf, snakemake.output.png], delta)


# the study's worker processes re-run this file, without the object Snakemake injects, under another name
# (reliability_study: a fork server, as spawn does)
if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (injected by Snakemake)
