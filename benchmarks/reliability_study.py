"""The reliability study of one run (rule ``reliability``, :mod:`eenet.analysis.reliability`) on its cached outputs as
they are, without Snakemake: for a run whose upstream files Snakemake would remake first (a model trained on another
machine, a code edit since), which rule ``reliability`` would retrain.

    python benchmarks/reliability_study.py --run fashion_mnist_6exit_light/seed0 [--workers 1]
    python benchmarks/reliability_study.py --run fashion_mnist_6exit_light/seed0 --accuracy-loss 0.05

The run's block of config/config.yaml with the schema's defaults, as the workflow reads it; its policies as the rule
studies them (:func:`eenet.pipeline.planning.study_methods`: the methods less the oracle, the guaranteed variants, each
combiner composed with each), the ``reliability`` block's re-splits (EENet and its ablations, alone or combined:
``eenet_resplits``), budgets and tolerance; ``results/<run>/logits/{val,test}.safetensors`` and ``cost.csv``. Writes
the rows of reliability.csv to ``benchmarks/out/<bench>_reliability.csv`` (``<bench>``: the run less its seed), prints
the wall-clock and CPU time and appends them to benchmarks/RESULTS.md.

``--accuracy-loss EPS``: the guaranteed policies and their plain ones only, under the guarantee ``accuracy_loss:
{epsilon: EPS}`` (the run's ``delta`` and ``loss`` where it has them) instead of the run's own, written to
``<bench>_reliability_accuracy_loss.csv``: how often each breaks "at most EPS of the samples lose against the last exit".
"""

from __future__ import annotations

import argparse
import copy
import resource
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]

from _results import append_section  # noqa: E402

from eenet.analysis.reliability import RELIABILITY_FIELDS, reliability_rows, reliability_study  # noqa: E402
from eenet.catalog import METHODS, split_method  # noqa: E402
from eenet.io import read_csv, write_csv  # noqa: E402
from eenet.measure.costs import read_costs, resolve_budget  # noqa: E402
from eenet.pipeline.logs import device_name  # noqa: E402
from eenet.pipeline.planning import hyper_params, study_methods  # noqa: E402
from eenet.pipeline.runs import expand_seed_runs  # noqa: E402
from eenet.records import read_logits_cache  # noqa: E402


def run_block(run: str) -> dict:
    """The run's benchmark block with the schema's defaults filled in (Snakemake's validate, as rules/common.smk does)."""
    from snakemake.utils import validate

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(cfg, schema=str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    runs, _ = expand_seed_runs(cfg["benchmarks"])
    if run not in runs:
        raise SystemExit(f"no run {run!r} in config/config.yaml; runs: {', '.join(runs)}")
    return runs[run]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="fashion_mnist_6exit_light/seed0")
    ap.add_argument("--results", default=str(REPO / "results"), help="the directory holding results/<run>/")
    ap.add_argument("--workers", type=int, default=1, help="processes fitting in parallel (default 1; the rule: reliability.workers)")
    ap.add_argument("--accuracy-loss", type=float, default=None, metavar="EPS", help="the guaranteed policies under accuracy_loss at EPS")
    ap.add_argument("--resplits", type=int, default=None, help="re-splits (default: the run's reliability.resplits)")
    ap.add_argument("--eenet-resplits", type=int, default=None, help="re-splits of EENet (default: reliability.eenet_resplits)")
    ap.add_argument("--out", default=None, help="the CSV (default: benchmarks/out/<bench>_reliability[_accuracy_loss].csv)")
    ap.add_argument("--record", default=str(REPO / "benchmarks" / "RESULTS.md"), help="where the timing is appended ('' : nowhere)")
    args = ap.parse_args()
    b = copy.deepcopy(run_block(args.run))
    if args.accuracy_loss is not None:
        own = b["guarantee"].get("accuracy_loss", {})
        b["guarantee"] = {k: v for k, v in b["guarantee"].items() if k not in ("cost", "accuracy_loss")}
        b["guarantee"]["accuracy_loss"] = {**own, "epsilon": args.accuracy_loss}
        guarded = [m for m in study_methods(b) if m.endswith("_guard")]
        methods = {n: hyper_params(b, n) for m in guarded for n in (m.removesuffix("_guard"), m)}
    else:
        methods = study_methods(b)
    study = b["reliability"]
    study.update({k: v for k, v in (("resplits", args.resplits), ("eenet_resplits", args.eenet_resplits)) if v is not None})
    bench = args.run.split("/seed")[0]
    out = Path(args.out or REPO / "benchmarks" / "out" / f"{bench}_reliability{'_accuracy_loss' if args.accuracy_loss else ''}.csv")
    res = Path(args.results) / args.run
    val, val_meta = read_logits_cache(res / "logits" / "val.safetensors", split="val")
    test, test_meta = read_logits_cache(res / "logits" / "test.safetensors", split="test")
    if val_meta["model_sha256"] != test_meta["model_sha256"]:
        raise SystemExit(f"{res}/logits: val and test come from different models")
    costs, _, cost_meta = read_costs(read_csv(res / "cost.csv"))
    budgets = {float(v): resolve_budget(float(v), b["budgets"]["unit"], costs) for v in b["budgets"]["values"]}
    slow = {m: study["eenet_resplits"] for m in methods if METHODS[split_method(m)[1]]["config"] == "eenet"}
    combined = any(split_method(m)[0] for m in methods)
    loss = b["guarantee"].get("accuracy_loss", {}).get("loss", "disagree")
    torch.set_num_threads(1)
    machine = f"{device_name(torch.device('cpu'))}, torch {torch.__version__}"
    print(f"{args.run}: {len(methods)} policies ({', '.join(methods)}), {study['resplits']} re-splits (EENet: {study['eenet_resplits']}), "
          f"budgets {budgets}, guarantee {b['guarantee']}, {args.workers} worker(s)", flush=True)  # fmt: skip

    def cpu() -> float:  # this process and its reaped workers
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    t0, c0 = time.perf_counter(), cpu()
    results = reliability_study((val["probs"], val["labels"]), (test["probs"], test["labels"]), costs, budgets, methods,
                                study["resplits"], study["seed"], slow, args.workers, None,
                                (val["logits"], test["logits"]) if combined else None, loss)  # fmt: skip
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    rows = reliability_rows(args.run, results, budgets, b["budgets"]["tolerance"], b["guarantee"])
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(out, rows, RELIABILITY_FIELDS)
    fits = {m: sum(1 for r in results if r[0] == m) for m in methods}
    print(f"{out}: {len(rows)} rows; {len(results)} fits in {wall:.1f} s wall-clock, {cpu_s:.1f} s CPU", flush=True)
    if args.record:
        table = ["| what | measured |", "|---|---|",
                 f"| policies | {', '.join(f'{m} ({n} fits)' for m, n in fits.items())} |",
                 f"| re-splits (EENet and ablations, alone or combined) | {study['resplits']} ({study['eenet_resplits']}) "
                 f"x {len(budgets)} budgets |",
                 f"| guarantee | {b['guarantee'].get('accuracy_loss') or b['guarantee'].get('cost') or 'cost, default'} |",
                 f"| worker processes | {args.workers} |", f"| wall-clock | {wall:.1f} s ({wall / 60:.1f} min) |",
                 f"| CPU time, all processes | {cpu_s:.1f} s ({cpu_s / 60:.1f} min) |",
                 f"| rows of {out.relative_to(REPO) if out.is_relative_to(REPO) else out} | {len(rows)} |"]  # fmt: skip
        n_val, n_test = val["labels"].numel(), test["labels"].numel()
        append_section(
            args.record, f"Reliability study, {args.run} — {machine}",
            f"{n_val:,} validation + {n_test:,} test samples re-split, costs from {cost_meta.get('device')}", table,
        )  # fmt: skip


if __name__ == "__main__":
    main()
