"""What does a guarantee cost in fitting time, and how long does the re-split reliability study of a benchmark take?

    python benchmarks/guarantee_fit_time.py [--bench fashion_mnist] [--results results] [--budget 0.5] [--all-policies]

1. Every threshold policy and its guaranteed variant (``<m>_guard``, cost at δ = 0.05) fitted at one budget on the
   benchmark's first 5,000 cached validation samples: median wall-clock seconds of ``repeats`` fits each, and the ratio.
2. The reliability study of the benchmark as rule ``reliability`` runs it (the config's ``reliability`` block and the
   policies it studies; ``--all-policies``: every registered policy but the oracle and single exits) on
   ``results/<bench>/logits/{val,test}.safetensors`` and ``cost.csv`` (made by ``make demo``): wall-clock time.

Appends both tables to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]

from _results import append_section  # noqa: E402

from eenet.analysis.reliability import reliability_rows, reliability_study  # noqa: E402
from eenet.io import read_csv  # noqa: E402
from eenet.measure.costs import read_costs, resolve_budget  # noqa: E402
from eenet.pipeline.logs import device_name  # noqa: E402
from eenet.records import read_logits_cache  # noqa: E402
from eenet.schedulers import METHODS, make_scheduler  # noqa: E402

GUARDED = ("maxpred", "entropy", "maxpred_ts", "entropy_ts")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="fashion_mnist")
    ap.add_argument("--results", default=str(REPO / "results"), help="the directory holding results/<bench>/")
    ap.add_argument("--budget", type=float, default=0.5, help="fraction of the full model's cost")
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--all-policies", action="store_true")
    ap.add_argument("--skip-study", action="store_true", help="time the fits only")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "RESULTS.md"))
    args = ap.parse_args()
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    bprops = schema["properties"]["benchmarks"]["additionalProperties"]["properties"]
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["benchmarks"][args.bench]
    study = {k: v["default"] for k, v in bprops["reliability"]["properties"].items()} | cfg.get("reliability", {})
    res = Path(args.results) / args.bench
    val, _ = read_logits_cache(res / "logits" / "val.safetensors", split="val")
    test, _ = read_logits_cache(res / "logits" / "test.safetensors", split="test")
    costs, _, meta = read_costs(read_csv(res / "cost.csv"))
    budget = resolve_budget(args.budget, "fraction", costs)
    probs, labels = val["probs"][:, : args.samples], val["labels"][: args.samples]
    torch.set_num_threads(1)
    machine = f"{device_name(torch.device('cpu'))}, torch {torch.__version__}"

    fit_rows = ["| policy | plain (s) | guaranteed (s) | ratio |", "|---|---|---|---|"]
    for m in GUARDED:
        times = {}
        for name in (m, f"{m}_guard"):
            make_scheduler(name).fit(probs, labels, costs, budget)  # warm-up
            runs = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                make_scheduler(name).fit(probs, labels, costs, budget)
                runs.append(time.perf_counter() - t0)
            times[name] = statistics.median(runs)
        ratio = times[f"{m}_guard"] / times[m]
        print(f"{m:<12} plain {times[m]:.3f} s   guaranteed {times[f'{m}_guard']:.3f} s   x{ratio:.2f}", flush=True)
        fit_rows.append(f"| {m} | {times[m]:.3f} | {times[f'{m}_guard']:.3f} | x{ratio:.2f} |")
    append_section(
        args.out, f"Guaranteed policies, fitting time, {args.bench} — {machine}, 1 thread",
        f"{probs.shape[1]:,} validation samples, budget {args.budget} of the full cost, median of {args.repeats} fits", fit_rows,
    )  # fmt: skip

    if args.skip_study:
        return
    methods = list(cfg.get("methods", bprops["methods"]["default"]))
    if args.all_policies:
        names = [m for m in METHODS if m not in ("oracle", "static")]
    else:  # as rule reliability: the benchmark's methods less the oracle, with the guaranteed variants
        names = [m for m in methods if m != "oracle"] + [f"{m}_guard" for m in methods if m in GUARDED and f"{m}_guard" not in methods]
    hyper = {m: dict(cfg.get("eenet", {})) if m.startswith("eenet") else {} for m in names}
    budgets = {float(v): resolve_budget(float(v), cfg["budgets"].get("unit", "fraction"), costs) for v in cfg["budgets"]["values"]}
    slow = {m: study["eenet_resplits"] for m in names if m.startswith("eenet")}

    def cpu() -> float:  # this process and its reaped workers
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    t0, c0 = time.perf_counter(), cpu()
    results = reliability_study((val["probs"], val["labels"]), (test["probs"], test["labels"]), costs, budgets, hyper,
                                study["resplits"], study["seed"], slow, study["workers"])  # fmt: skip
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    per = {}
    for m in names:
        per[m] = sum(1 for r in results if r[0] == m)
    rows = reliability_rows(args.bench, results, budgets, 0.05)
    workers = study["workers"]
    print(f"reliability study: {len(results)} fits of {len(names)} policies in {wall:.1f} s, {cpu_s:.1f} CPU s ({workers} workers)")
    table = ["| what | measured |", "|---|---|",
             f"| policies | {', '.join(f'{m} ({per[m]} fits)' for m in names)} |",
             f"| re-splits (EENet and ablations) | {study['resplits']} ({study['eenet_resplits']}) x {len(budgets)} budgets |",
             f"| worker processes | {study['workers']} |", f"| wall-clock | {wall:.1f} s ({wall / 60:.2f} min) |",
             f"| CPU time, all processes (/ workers: the wall-clock on free cores) | {cpu_s:.1f} s ({cpu_s / workers / 60:.2f} min) |",
             f"| rows of reliability.csv | {len(rows)} |"]  # fmt: skip
    append_section(
        args.out, f"Reliability study, {args.bench} — {machine}",
        f"{val['labels'].numel():,} validation + {test['labels'].numel():,} test samples re-split, costs from {meta.get('device')}", table,
    )  # fmt: skip


if __name__ == "__main__":
    main()
