"""Does fitting a combined policy's thresholds on out-of-fold combiner outputs (``combiner_fit.mode: crossfit``) lose
test accuracy against fitting the combiner and the thresholds on the same validation outputs (``same``, the fit before
the option), or against a split of validation (``split``)?

    python benchmarks/crossfit.py          # fashion_mnist_6exit_light, seeds 0-2, ztw_ens -> benchmarks/out/crossfit.csv
    python benchmarks/crossfit.py --combiners mie pa --methods maxpred entropy patience --csv benchmarks/out/crossfit_mie_pa.csv

For every training seed's run (``results/<bench>/seed<s>/``: logits/{val,test}.safetensors with raw logits, cost.csv)
and every combined policy ``<combiner>+<method>`` (``--combiners``, ``--methods``), each mode (``--modes``) fits the
policy at the budgets (fractions of the last exit's cost) with :func:`eenet.schedulers.fit_budgets`, as fit_scheduler
does: the decision overhead per exit is the one the run's fitted file of the policy records (``decision_ms``, so
``same`` reproduces the run's files, fitted before the option: the column ``as_run`` says whether its validation
accuracy is the file's), the fold seed the run's scheduler seed (= the training seed here), 2 folds (``--folds``), a
split's share 0.5. The plain method (no combiner) is fitted too, for its validation - test gap. Each fit is evaluated on
the test cache: accuracy and realised cost. Prints a line per fit and a Markdown table of the means over seeds, and
writes every row to benchmarks/out/crossfit.csv (``--csv``). One torch thread.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch

from eenet.io import read_csv, read_json
from eenet.measure.costs import read_costs, resolve_budget
from eenet.records import read_logits_cache
from eenet.schedulers import accuracy, fit_budgets, realised_cost

REPO = Path(__file__).resolve().parents[1]
FIELDS = ["bench", "seed", "method", "mode", "budget_value", "budget_ms", "val_accuracy", "test_accuracy", "val_minus_test",
          "test_cost_ms", "cost_ratio", "as_run", "fit_s"]  # fmt: skip


def run_rows(run: Path, seed: int, methods: list[str], modes: list[str], budgets: list[float], folds: int) -> list[dict]:
    val, _ = read_logits_cache(run / "logits" / "val.safetensors", split="val")
    test, _ = read_logits_cache(run / "logits" / "test.safetensors", split="test")
    costs_ms, _, _ = read_costs(read_csv(run / "cost.csv"))
    budgets_ms = [resolve_budget(b, "fraction", costs_ms) for b in budgets]
    rows = []
    for method in methods:
        for mode in modes if "+" in method else ["-"]:
            fitted_file = run / "schedulers" / method / f"{budgets[-1]}.json"
            record = read_json(fitted_file) if fitted_file.is_file() else {}
            decision = record.get("decision_ms")
            overhead = None if decision is None else (lambda _s, d=decision: d)
            params = {"seed": seed} | ({"combiner_fit": {"mode": mode, "folds": folds, "seed": seed}} if mode != "-" else {})
            start = time.perf_counter()
            fitted = fit_budgets(method, params, val["probs"], val["logits"], val["labels"], costs_ms, budgets_ms, overhead)
            seconds = time.perf_counter() - start
            for value, budget_ms, sched in zip(budgets, budgets_ms, fitted, strict=True):
                row = {"bench": run.parent.name, "seed": seed, "method": method, "mode": mode, "budget_value": value,
                       "budget_ms": budget_ms, "fit_s": round(seconds, 2)}  # fmt: skip
                if isinstance(sched, Exception):
                    rows.append(row | {"val_accuracy": "", "test_accuracy": "infeasible"})
                    continue
                outputs = sched.outputs(test)
                exits = sched.assign(outputs, test["labels"])
                cost = realised_cost(exits, torch.tensor(sched.costs_))
                test_acc = accuracy(outputs, test["labels"], exits)
                ran = run / "schedulers" / method / f"{value}.json"
                as_run = read_json(ran).get("val_accuracy") == sched.val_accuracy_ if ran.is_file() and mode in ("same", "-") else ""
                rows.append(row | {
                    "val_accuracy": sched.val_accuracy_, "test_accuracy": test_acc, "val_minus_test": sched.val_accuracy_ - test_acc,
                    "test_cost_ms": cost, "cost_ratio": cost / budget_ms, "as_run": as_run,
                })  # fmt: skip
                r = rows[-1]
                print(f"seed {seed} {method:<24} {mode:<8} {value:<4} val {100 * r['val_accuracy']:6.2f} test "
                      f"{100 * test_acc:6.2f} gap {100 * r['val_minus_test']:+5.2f} cost/budget {r['cost_ratio']:.3f} "
                      f"{'as run' if as_run is True else ''}", flush=True)  # fmt: skip
    return rows


def mean_table(rows: list[dict], budgets: list[float]) -> list[str]:
    """Markdown: per policy and mode, the mean over seeds of val accuracy, test accuracy and their gap (points), per
    budget and over the budgets."""
    keys = list(dict.fromkeys((r["method"], r["mode"]) for r in rows))
    head = "| policy | mode | " + " | ".join(f"{b}: val / test / gap" for b in budgets) + " | mean test | mean gap |"
    lines = [head, "|---" * (len(budgets) + 4) + "|"]
    for method, mode in keys:
        cells, tests, gaps = [], [], []
        for b in budgets:
            rs = [r for r in rows if (r["method"], r["mode"], r["budget_value"]) == (method, mode, b) and r["val_accuracy"] != ""]
            if not rs:
                cells.append("infeasible")
                continue
            v, t = (100 * sum(r[k] for r in rs) / len(rs) for k in ("val_accuracy", "test_accuracy"))
            cells.append(f"{v:.2f} / {t:.2f} / {v - t:+.2f}")
            tests.append(t)
            gaps.append(v - t)
        mt = f"{sum(tests) / len(tests):.2f}" if tests else ""
        mg = f"{sum(gaps) / len(gaps):+.2f}" if gaps else ""
        lines.append(f"| {method} | {mode} | " + " | ".join(cells) + f" | {mt} | {mg} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", default="fashion_mnist_6exit_light")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--combiners", nargs="+", default=["ztw_ens"])
    ap.add_argument("--methods", nargs="+", default=["maxpred", "entropy", "maxpred_shared", "patience"])
    ap.add_argument("--modes", nargs="+", default=["same", "crossfit", "split"], choices=["same", "crossfit", "split"])
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--budgets", type=float, nargs="+", default=[0.4, 0.5, 0.6, 0.7])
    ap.add_argument("--csv", default=str(REPO / "benchmarks" / "out" / "crossfit.csv"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    methods = [m for base in args.methods for m in (base, *(f"{c}+{base}" for c in args.combiners))]
    rows = []
    for seed in args.seeds:
        rows += run_rows(REPO / "results" / args.bench / f"seed{seed}", seed, methods, args.modes, args.budgets, args.folds)
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    print(f"\nmeans over seeds {args.seeds} (points; gap = validation - test accuracy), rows in {args.csv}\n")
    print("\n".join(mean_table(rows, args.budgets)))


if __name__ == "__main__":
    main()
