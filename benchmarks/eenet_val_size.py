"""EENet against the size of the validation set it is fitted on, beside MaxPred, on a run's cached outputs.

    nice -n 10 python benchmarks/eenet_val_size.py [--run results/fashion_mnist] [--sizes 500 1000 2000 5000]
        [--seeds 0 1] [--budgets 0.5 0.6 0.7]

For each size, random subsets of the cached validation outputs (one per seed; the whole set once when the size is
all of it) fit EENet (the benchmark's ``eenet:`` block of config/config.yaml, the subset's seed as the scheduler seed)
and MaxPred at each budget (a fraction of the last exit's cost, cost.csv); both are evaluated on the whole cached
test split. Prints every fit and the mean difference EENet - MaxPred per size and budget; appends both to
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]

from _results import append_section  # noqa: E402

from eenet.io import read_csv  # noqa: E402
from eenet.measure.costs import read_costs, resolve_budget  # noqa: E402
from eenet.records import read_logits_cache  # noqa: E402
from eenet.schedulers import accepted_params, accuracy, make_scheduler  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="results/fashion_mnist", help="a run's results directory (logits/, cost.csv)")
    ap.add_argument("--bench", default="fashion_mnist", help="the config benchmark whose eenet: block is used")
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000, 5000])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--budgets", type=float, nargs="+", default=[0.5, 0.6, 0.7])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run = Path(args.run)
    val, _ = read_logits_cache(run / "logits" / "val.safetensors", split="val")
    test, _ = read_logits_cache(run / "logits" / "test.safetensors", split="test")
    costs_ms, _, _ = read_costs(read_csv(run / "cost.csv"))
    hyper = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["benchmarks"][args.bench].get("eenet", {})
    n_val = val["labels"].numel()
    fits, table = [], ["| val size | seed | budget | EENet | MaxPred | EENet - MaxPred | EENet fit s |", "|---|---|---|---|---|---|---|"]
    for size in args.sizes:
        if size > n_val:
            raise SystemExit(f"--sizes {size}: the cached validation split has {n_val} samples")
        for seed in args.seeds if size < n_val else args.seeds[:1]:
            idx = torch.randperm(n_val, generator=torch.Generator().manual_seed(seed))[:size]
            probs, labels = val["probs"][:, idx], val["labels"][idx]
            for b in args.budgets:
                budget = resolve_budget(b, "fraction", costs_ms)
                t0 = time.perf_counter()
                ee = make_scheduler("eenet", **accepted_params("eenet", {**hyper, "seed": seed})).fit(probs, labels, costs_ms, budget)
                fit_s = time.perf_counter() - t0
                mp = make_scheduler("maxpred").fit(probs, labels, costs_ms, budget)
                a_ee, a_mp = (accuracy(test["probs"], test["labels"], s.assign(test["probs"])) for s in (ee, mp))
                fits.append((size, b, a_ee - a_mp))
                line = f"| {size} | {seed} | {b} | {100 * a_ee:.2f} | {100 * a_mp:.2f} | {100 * (a_ee - a_mp):+.2f} | {fit_s:.0f} |"
                print(line, flush=True)
                table.append(line)
    summary = ["| val size | " + " | ".join(f"budget {b}" for b in args.budgets) + " |", "|---" * (1 + len(args.budgets)) + "|"]
    for size in args.sizes:
        cells = [f"{100 * statistics.mean(d for s, bb, d in fits if s == size and bb == b):+.2f}" for b in args.budgets]
        summary.append(f"| {size} | " + " | ".join(cells) + " |")
    print("\n".join(summary))
    note = (f"test accuracy (%) of EENet and MaxPred fitted on random subsets of {run}'s {n_val} validation outputs (subset seed = "
            f"EENet's seed), evaluated on its {test['labels'].numel()} test outputs; budgets are fractions of the last exit's cost. "
            "Then the mean EENet - MaxPred (points) per size and budget.")  # fmt: skip
    append_section(REPO / "benchmarks" / "RESULTS.md", "EENet against the validation set's size", note, [*table, "", *summary])


if __name__ == "__main__":
    main()
