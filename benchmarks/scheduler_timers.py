"""Snakemake's re-evaluation timers after many finished jobs, with and without the workflow's repair.

    python benchmarks/scheduler_timers.py                  # 100 jobs of 0.2 s on 1 core, both variants
    python benchmarks/scheduler_timers.py --jobs 150 --seconds 0.1

A throw-away workflow of ``--jobs`` independent jobs (each ``sleep``s ``--seconds``) runs with ``--cores 1``, so that
jobs wait for the core as the benchmarks' jobs do. Its Snakefile applies :func:`eenet.pipeline.scheduling.apply` (the
repair ``rules/common.smk`` applies) or not. While it runs, the Snakemake process's threads (``/proc/<pid>/task``)
and CPU time are sampled every 0.1 s; reported: the threads once 90 jobs have finished (or the most seen, where fewer
finished), the most threads seen, and Snakemake's own CPU seconds per wall second over the run (its jobs are
``sleep``: they cost no CPU). Linux only. Prints a Markdown table, appends it to benchmarks/RESULTS.md and writes the
rows to benchmarks/out/scheduler_timers.csv.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from _results import append_section  # noqa: E402

SNAKEFILE = """
import os
if os.environ.get("REPAIR") == "1":
    from eenet.pipeline.scheduling import apply
    apply()

rule all:
    input: expand("out/{{i}}.txt", i=range({jobs}))

rule job:
    output: "out/{{i}}.txt"
    shell: "sleep {seconds}; touch {{output}}"
"""
FIELDS = ["repair", "jobs", "job_s", "threads_after_90", "max_threads", "snakemake_cpu_per_s", "wall_s", "snakemake_version"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (its own threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(repair: bool, jobs: int, seconds: float) -> dict[str, object]:
    """One run of the throw-away workflow; its thread and CPU figures (see the module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        wd = Path(tmp)
        (wd / "Snakefile").write_text(SNAKEFILE.format(jobs=jobs, seconds=seconds))
        env = {**os.environ, "REPAIR": "1" if repair else "0"}
        snakemake = Path(sys.executable).parent / "snakemake"
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(snakemake), "--cores", "1", "--quiet", "all"], cwd=wd, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
        most, at_90 = 0, None
        cpu = 0.0
        while proc.poll() is None:
            try:
                threads = len(os.listdir(f"/proc/{proc.pid}/task"))
                cpu = cpu_seconds(proc.pid)
            except (FileNotFoundError, ProcessLookupError):
                break
            most = max(most, threads)
            done = len(list((wd / "out").glob("*.txt"))) if (wd / "out").is_dir() else 0
            if at_90 is None and done >= 90:
                at_90 = threads
            time.sleep(0.1)
        wall = time.perf_counter() - t0
        err = proc.stderr.read() if proc.stderr else ""
        if proc.wait() != 0:
            raise RuntimeError(f"the workflow failed (repair={repair}): {err[-2000:]}")
    version = subprocess.run([str(snakemake), "--version"], capture_output=True, text=True).stdout.strip()
    return {"repair": repair, "jobs": jobs, "job_s": seconds, "threads_after_90": at_90 if at_90 is not None else most,
            "max_threads": most, "snakemake_cpu_per_s": round(cpu / wall, 3), "wall_s": round(wall, 1),
            "snakemake_version": version}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=0.2, help="what each job sleeps")
    ap.add_argument("--csv", default=str(REPO / "benchmarks" / "out" / "scheduler_timers.csv"))
    ap.add_argument("--results", default=str(REPO / "benchmarks" / "RESULTS.md"), help="Markdown log appended to ('' for none)")
    args = ap.parse_args()
    rows = []
    for repair in (False, True):
        row = run(repair, args.jobs, args.seconds)
        print(row, flush=True)
        rows.append(row)
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    table = ["| repair | jobs | threads after 90 jobs | most threads | Snakemake CPU s per s | wall s |", "|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {'yes' if r['repair'] else 'no'} | {r['jobs']} | {r['threads_after_90']} | {r['max_threads']} | "
                     f"{r['snakemake_cpu_per_s']} | {r['wall_s']} |")  # fmt: skip
    print("\n".join(table))
    if args.results:
        note = (f"Snakemake {rows[0]['snakemake_version']}, `--cores 1`, {args.jobs} jobs of `sleep {args.seconds}`; threads of the "
                "Snakemake process from /proc, its CPU time over the run's wall time.")  # fmt: skip
        append_section(args.results, "Snakemake's re-evaluation timers, with and without the repair", note, table)


if __name__ == "__main__":
    main()
