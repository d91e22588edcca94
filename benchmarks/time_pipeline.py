"""Time the demo pipeline from scratch, a dry run on the up-to-date tree, a budget change to a new curve, and DVC
recording of the artifacts.

    python benchmarks/time_pipeline.py [--cores 2] [--target results/fashion_mnist/curve.pdf] [--dry-runs 5]

The pipeline runs in a fresh copy of the workflow (a temporary directory, made a git + DVC repository), so
nothing in the repository's results/ is reused or touched. Targets on 2 cores: the demo under 10 minutes,
the dry run under 5 s. Recording (`make record`: dvc.yaml from the job graph, dvc commit, re-sync of
Snakemake, dvc-record.json) and `dvc status` are timed on the demo's artifacts.
The budget change adds one budget (--new-budget) to the target's benchmark and times the run to the new curve
(its fits, evaluations and the plot). Output: benchmarks/out/timings.csv and benchmarks/out/timings.md (+ the
demo's summary.csv beside them); the table is also appended to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml
from _results import append_section, copy_workflow

REPO = Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--target", default="results/fashion_mnist/curve.pdf")
    ap.add_argument("--dry-runs", type=int, default=5)
    ap.add_argument("--new-budget", type=float, default=0.65)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out"))
    ap.add_argument("--results", default=str(REPO / "benchmarks" / "RESULTS.md"))
    args = ap.parse_args()
    snakemake = [sys.executable, "-m", "snakemake", "--cores", str(args.cores)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="eenet-bench-") as tmp:
        wd = copy_workflow(Path(tmp))
        print(f"running the demo pipeline from scratch in {wd} ...", flush=True)
        full = run([*snakemake, args.target], wd)
        print(f"demo pipeline: {full:.1f} s", flush=True)
        dry = [run([*snakemake, "-n", args.target], wd) for _ in range(args.dry_runs)]
        runs = ", ".join(f"{d:.2f}" for d in dry)
        print(f"dry run on the up-to-date tree: median {statistics.median(dry):.2f} s over {len(dry)} ({runs})")
        bench = Path(args.target).parts[1]
        config = wd / "config" / "config.yaml"
        cfg = yaml.safe_load(config.read_text())
        cfg["benchmarks"][bench]["budgets"]["values"].append(args.new_budget)
        config.write_text(yaml.safe_dump(cfg, sort_keys=False))
        budget_change = run([*snakemake, args.target], wd)
        print(f"budget {args.new_budget} added -> new curve: {budget_change:.1f} s", flush=True)
        for cmd in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
            run(cmd, wd)
        record = run([sys.executable, "-m", "eenet.pipeline.dvc", "record", args.target], wd)
        status = statistics.median(run([sys.executable, "-m", "dvc", "status"], wd) for _ in range(3))
        size = sum(f.stat().st_size for d in ("results", "data") for f in (wd / d).rglob("*") if f.is_file()) / 2**20
        print(f"record (dvc.yaml + dvc commit + touch) of {size:.1f} MiB of artifacts: {record:.1f} s; dvc status: {status:.2f} s")
        summary = wd / Path(args.target).parent / "summary.csv"
        if summary.exists():
            shutil.copy2(summary, out / "demo_summary.csv")
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.node(), "cores": args.cores,
            "cpu_count": os.cpu_count(), "python": platform.python_version()}  # fmt: skip
    rows = [
        {"measure": "demo_pipeline_s", "value": round(full, 2), "target": 600, "met": full < 600, **meta},
        {"measure": "dry_run_median_s", "value": round(statistics.median(dry), 3), "target": 5, "met": statistics.median(dry) < 5, **meta},
        {"measure": "budget_change_to_curve_s", "value": round(budget_change, 2), "target": "", "met": "", **meta},
        {"measure": "dvc_record_s", "value": round(record, 2), "target": "", "met": "", **meta},
        {"measure": "dvc_status_median_s", "value": round(status, 3), "target": "", "met": "", **meta},
    ]
    with open(out / "timings.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    md = ["| measure | value (s) | target (s) | met |", "|---|---|---|---|"]
    md += [
        f"| {r['measure']} | {r['value']} | {r['target'] or '-'} | {'-' if r['met'] == '' else 'yes' if r['met'] else 'NO'} |" for r in rows
    ]
    md.append(f"\n{meta['date']}, {args.cores} cores requested, {meta['cpu_count']} CPUs, Python {meta['python']}.")
    (out / "timings.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    note = f"also in benchmarks/out/timings.md; budget change = one budget ({args.new_budget}) added to `{bench}`."
    append_section(args.results, f"Pipeline timings — {platform.processor() or platform.machine()}, {args.cores} cores", note, md[:-1])


if __name__ == "__main__":
    main()
