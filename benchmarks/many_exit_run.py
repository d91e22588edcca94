"""Training and fitting times of finished runs, read from their files: the many-exit benchmarks' figures.

    python benchmarks/many_exit_run.py [--runs results/fashion_mnist_6exit/seed0 ... results/rotten_tomatoes_6exit]

Runs nothing: for each run directory (results/<bench> or results/<bench>/seed<s>) it reads train_metrics.csv (the
seconds of every epoch, validation pass included: the training time; target for the 6-exit image network: at most
20 min a seed on 2 cores), the cached test outputs (each exit's test accuracy; target for that network's last exit:
at least the demo's 91 %), and Snakemake's own record of each job's start and end
(.snakemake/metadata: wall seconds, Python's start-up included) for fit_scheduler and evaluate_test (each policy's job,
summed: the EENet variants apart from the other policies) and the other rules; with networks trained alone for the
frontier (results/<run>/frontier/), their training minutes summed and frontier_cost's seconds. Prints a table per run
and appends it to benchmarks/RESULTS.md, with benchmarks/out/many_exit_run.csv (a run measured before keeps its row
unless measured again). Quote the figures with the machine
they ran on (os.cpu_count() and the platform are recorded): they are wall-clock times on a possibly shared machine.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from _results import append_section, job_seconds  # noqa: E402

from eenet.io import read_csv  # noqa: E402
from eenet.records import read_logits_cache  # noqa: E402

DEFAULT_RUNS = [f"results/fashion_mnist_6exit/seed{s}" for s in range(3)] + ["results/rotten_tomatoes_6exit"]
# each rule's output, whose Snakemake record gives the job's seconds
OTHER_RULES = {"cache_logits": "logits/test.safetensors", "profile_latency": "cost.csv", "measure_runtime": "runtime.csv",
               "compute_stats": "stats.csv", "plot_curve": "summary.csv", "exit_analysis": "exits.csv",
               "frontier_cost": "frontier.csv"}  # fmt: skip


def policy_seconds(run: Path, folder: str) -> dict[str, float]:
    """Seconds of each policy's job that wrote ``<run>/<folder>/<method>/*.json`` (one job a policy, every budget)."""
    out = {}
    for method in sorted(p for p in (run / folder).iterdir() if p.is_dir()):
        first = min(method.glob("*.json"))
        seconds = job_seconds(REPO, first.resolve().relative_to(REPO))
        if seconds is not None:
            out[method.name] = seconds
    return out


def run_row(run: Path) -> dict[str, object]:
    """One run's figures (see the module docstring)."""
    rel = run.resolve().relative_to((REPO / "results").resolve())
    epochs = read_csv(run / "train_metrics.csv")
    test, _ = read_logits_cache(run / "logits" / "test.safetensors", split="test")
    per_exit = (test["probs"].argmax(2) == test["labels"]).float().mean(1).tolist()
    fits, evals = policy_seconds(run, "schedulers"), policy_seconds(run, "eval")
    eenet = [s for m, s in fits.items() if m.split("+")[-1].startswith("eenet")]
    row: dict[str, object] = {
        "run": str(rel),
        "epochs": len(epochs),
        "train_min": round(sum(float(e["seconds"]) for e in epochs) / 60, 1),
        "epoch_s_median": round(sorted(float(e["seconds"]) for e in epochs)[len(epochs) // 2], 1),
        "test_acc_per_exit": " / ".join(f"{100 * a:.2f}" for a in per_exit),
        "policies": len(fits),
        "fit_min_eenet": round(sum(eenet) / 60, 1),
        "fit_min_others": round((sum(fits.values()) - sum(eenet)) / 60, 1),
        "eval_min": round(sum(evals.values()) / 60, 1),
    }
    alone = sorted((run / "frontier").glob("*/train_metrics.csv"))
    row["frontier_networks"] = len(alone)
    row["frontier_train_min"] = round(sum(float(e["seconds"]) for f in alone for e in read_csv(f)) / 60, 1) if alone else ""
    for rule, output in OTHER_RULES.items():
        seconds = job_seconds(REPO, Path("results") / rel / output)
        row[f"{rule}_s"] = round(seconds) if seconds is not None else ""
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, help="run directories (results/<bench>[/seed<s>])")
    args = ap.parse_args()
    rows = [run_row(REPO / r) for r in args.runs]
    out = REPO / "benchmarks" / "out" / "many_exit_run.csv"
    out.parent.mkdir(exist_ok=True)
    measured = {str(r["run"]) for r in rows}
    kept = [r for r in (read_csv(out) if out.is_file() else []) if r["run"] not in measured]
    fields = list(dict.fromkeys([*rows[0], *(k for r in kept for k in r)]))
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(kept + rows)
    keys = list(rows[0])
    table = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)] + ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    note = (
        f"read from the runs' files ({os.cpu_count()} CPUs, {platform.machine()}, {platform.processor() or 'cpu'}): training "
        "minutes from train_metrics.csv, each exit's test accuracy (%) from the cached test outputs, fitting and evaluation "
        "minutes summed over the policies' jobs and the other rules' seconds, from Snakemake's record of each job's start and "
        "end (.snakemake/metadata; EENet and its ablations, alone or with a combiner, apart)"
    )
    print(append_section(REPO / "benchmarks" / "RESULTS.md", "Many-exit runs: training and fitting times", note, table))


if __name__ == "__main__":
    main()
