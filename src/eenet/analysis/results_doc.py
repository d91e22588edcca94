"""docs/results.md, written from the CSVs kept in benchmarks/out/: every number in it is read from one of them.

    python -m eenet.analysis.results_doc write   # after replacing a kept CSV: rewrite docs/results.md
    python -m eenet.analysis.results_doc check   # exit 1, naming the write command, when docs/results.md is stale

The document leads with what survives the multiple-comparison correction (policies ahead of MaxPred after Holm,
stats.csv's ``ahead``), then has a section per run (:func:`eenet.analysis.results_sections.bench_section`) and the
runtime measurements (:mod:`eenet.analysis.results_runtime`) and the re-split reliability study
(:mod:`eenet.analysis.results_reliability`). A kept stats.csv written before the correction has no
``p_holm``; the document says so instead of guessing. ``make lint`` runs the check.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from eenet.analysis.results_compiled import compiled_section
from eenet.analysis.results_reliability import reliability_section
from eenet.analysis.results_runtime import (
    clock_section,
    earlier_runtime,
    frontier_networks,
    frontier_section,
    many_exit_table,
    runtime_section,
    user_chain,
)
from eenet.analysis.results_sections import (
    Run,
    against_frontier,
    bench_section,
    by_budget,
    comparisons,
    has,
    holm_known,
    interval,
    is_bound,
    none_survive,
    pct,
    survivors,
    uncorrected,
)
from eenet.io import read_csv

__all__ = ["Spec", "RUNS", "MANY_EXIT", "RELIABILITY", "load_run", "render", "main"]

WRITE = "python -m eenet.analysis.results_doc write"
STATS_CMD = ".venv/bin/python -m eenet.analysis.stats results/{}/stats.csv"


@dataclass(frozen=True)
class Spec:
    """A kept run: its file prefix in benchmarks/out/, its section heading and the commands that make it."""

    prefix: str
    heading: str
    commands: tuple[str, ...]


RUNS = (
    Spec("demo", "## The demo (`fashion_mnist`, `make demo`)", ("make demo", STATS_CMD.format("fashion_mnist"))),
    Spec(
        "fashion_mnist_3seeds",
        "## Training seeds (`fashion_mnist_3seeds`, `make seeds`)",
        ("make seeds", STATS_CMD.format("fashion_mnist_3seeds")),
    ),
    Spec(
        "rotten_tomatoes",
        "## `rotten_tomatoes` (text)",
        (".venv/bin/snakemake --cores 2 results/rotten_tomatoes/curve.pdf", STATS_CMD.format("rotten_tomatoes")),
    ),
)
"""The runs with a section of their own, in the document's order."""

MANY_EXIT = (
    Spec("fashion_mnist_6exit", "### `fashion_mnist_6exit` (image)", ()),
    Spec("rotten_tomatoes_6exit", "### `rotten_tomatoes_6exit` (text)", ()),
    Spec("fashion_mnist_6exit_light", "### `fashion_mnist_6exit_light` (image, pool + linear exit heads)", ()),
)
"""The many-exit runs, under one section whose commands make both."""

MANY_EXIT_COMMANDS = (
    ".venv/bin/snakemake --cores 2 results/fashion_mnist_6exit/curve.pdf results/rotten_tomatoes_6exit/curve.pdf",
    ".venv/bin/snakemake --cores 2 results/fashion_mnist_6exit_light/curve.pdf",
    STATS_CMD.format("fashion_mnist_6exit"),
    STATS_CMD.format("rotten_tomatoes_6exit"),
    STATS_CMD.format("fashion_mnist_6exit_light"),
)


RELIABILITY = {
    "fashion_mnist_6exit_light": "",
    "fashion_mnist_6exit": "",
}
"""The runs whose re-split reliability study has a place in the document (``<run>_reliability.csv`` and
``<run>_reliability_accuracy_loss.csv`` in benchmarks/out) -> why it is missing where it is (said in its place)."""


def _read(out_dir: Path, name: str) -> list[dict[str, str]]:
    """The rows of ``out_dir/name`` (``[]`` when it is not kept)."""
    path = out_dir / name
    return read_csv(path) if path.is_file() else []


def load_run(out_dir: Path, prefix: str) -> Run:
    """A run's kept CSVs: ``<prefix>_{stats,summary,cost,runtime}.csv`` of ``out_dir``."""
    return Run(prefix, *(_read(out_dir, f"{prefix}_{kind}.csv") for kind in ("stats", "summary", "cost", "runtime")))


def _best_auc(run: Run) -> str:
    """The highest AUC among the policies (bounds left out) against MaxPred's, from stats.csv's ``all`` rows."""
    aucs = {r["method"]: float(r["auc"]) for r in run.use(run.stats) if r["budget_value"] == "all" and has(r.get("auc"))}
    pol = {m: a for m, a in aucs.items() if not is_bound(m)}
    if not pol:
        return ""
    best = max(pol, key=lambda m: (pol[m], m))
    return f"`{best}` {pct(pol[best])}" + (f" (MaxPred {pct(aucs['maxpred'])})" if best != "maxpred" and "maxpred" in aucs else "")


def _survives(runs: list[Run]) -> list[str]:
    """The leading section: per run, what is ahead of MaxPred after Holm, or that the kept CSV cannot say."""
    lines = [
        "## What survives the multiple-comparison correction",
        "",
        "A policy *survives* at a budget when it is ahead of MaxPred after the Holm correction over every comparison of its stats.csv "
        "(Holm-adjusted p < 0.05 and a positive advantage: stats.csv's `ahead`). The oracle, alone or composed with a combiner, reads "
        "the labels: it is a bound, counted among the comparisons but not listed.",
        "",
        "| run | seeds | comparisons with MaxPred | ahead after Holm | interval above 0, uncorrected | highest AUC (%) |",
        "|---|---|---|---|---|---|",
    ]
    unknown = []
    for run in runs:
        if not run.stats:
            continue
        comp = comparisons(run)
        if holm_known(run):
            ahead = survivors(run)
            holm = by_budget(ahead) if ahead else "**none**"
        elif none_survive(run):
            holm = "**none** (the kept stats.csv predates the correction, but no interval lies above 0 even before it)"
        else:
            holm = "not known: the kept stats.csv predates the correction"
            unknown.append(f"`{run.bench}`")
        up = uncorrected(run)
        n_up = f"{len(up)} ({len({r['method'] for r in up})} policies)" if len(up) > 3 else (by_budget(up) or "none")
        if len(up) > 3:
            top = min(up, key=lambda r: (-float(r["vs_maxpred"]), r["method"]))
            tied = sum(float(r["vs_maxpred"]) == float(top["vs_maxpred"]) for r in up) - 1
            n_up += f"; largest `{top['method']}`{f' (+{tied} tied)' if tied else ''} at {top['budget_value']}, {interval(top)}"
        lines.append(f"| `{run.bench}` | {len(run.seeds)} | {len(comp)} | {holm} | {n_up} | {_best_auc(run)} |")
    lines.append("")
    if unknown:
        one = len(unknown) == 1
        its, runs_, where = ("its", "the run", "its section") if one else ("their", "the runs", "their sections")
        lines += [f"What survives on {', '.join(unknown)} is not known: {its} kept stats.csv predates the correction (no `p_holm` "
                  f"column), so {runs_} must be redone (the commands in {where}) to get it. {its.capitalize()} uncorrected intervals "
                  f"are listed in {where}; with many comparisons some lie above 0 by chance.", ""]  # fmt: skip
    return lines


def _against_frontier(runs: list[Run]) -> list[str]:
    """The leading section's second table: per run whose stats.csv has the frontier's Holm-adjusted p-values, how many
    policy-budget pairs are ahead of and behind what a user could run instead, at equal measured latency."""
    lines = []
    for run in runs:
        rows = [
            r for r in run.use(run.stats) if r["budget_value"] != "all" and not is_bound(r["method"]) and has(r.get("vs_frontier_p_holm"))
        ]
        if not rows:
            continue
        ahead = [r for r in rows if against_frontier(r) > 0]
        behind = [r for r in rows if against_frontier(r) < 0]
        nets = {n for r in rows for n in r["frontier_network"].split("/")}
        kind = "the cuts and plain networks trained alone" if any(not n.startswith("cut") for n in nets) else "the cuts"
        best = max(rows, key=lambda r: float(r["vs_frontier"]))
        lines.append(f"| `{run.bench}` | {kind} | {len(rows)} | {by_budget(ahead, 'vs_frontier') or '**none**'} | {len(behind)} | "
                     f"`{best['method']}` at {best['budget_value']}, {interval(best, 'vs_frontier')} |")  # fmt: skip
    if not lines:
        return []
    return [
        "### Against what a user would run instead",
        "",
        "The same policies against the plain-network frontier at their measured latency (batch 1; each seed against its own "
        "frontier, the interval over seeds and test samples where there are several; Holm over the run's comparisons): the "
        "network cut after an exit with that exit's head only, and, where the run trains them, plain networks of each depth "
        "(and half the width) trained alone with the same recipe (each run's section has the tables).",
        "",
        "| run | frontier | comparisons | ahead after Holm | behind after Holm | largest advantage |",
        "|---|---|---|---|---|---|",
        *lines,
        "",
    ]


INTRO = [
    "# Results",
    "",
    f"<!-- Written by `{WRITE}` from the CSVs in benchmarks/out/; `make lint` fails when it is stale. Edit the code "
    "(src/eenet/analysis/results_doc.py), not this file. -->",
    "",
    "What the kept runs found. Every number below is read from a CSV kept in `benchmarks/out/` (each section names its "
    "files), and the machine and torch version are those the CSVs record; where they do not record something (a run's date, "
    "its torch version), the section says so. Latencies are measured, and differ from machine to machine.",
    "",
    "Each section shows the commands that make its run; `python -m eenet.analysis.stats results/<bench>/stats.csv` prints "
    "the run's statistics table. To refresh this document, copy the run's `results/<bench>/stats.csv` and `summary.csv` "
    "(the demo: also `cost.csv` and `runtime.csv`) to `benchmarks/out/<run>_<name>.csv`, then run "
    f"`{WRITE}`. Timings of the pipeline itself are in [benchmarks/RESULTS.md](../benchmarks/RESULTS.md).",
    "",
]


def render(out_dir: Path) -> str:
    """The whole of docs/results.md from the kept CSVs of ``out_dir`` (benchmarks/out)."""
    out_dir = Path(out_dir)
    runs = {s.prefix: load_run(out_dir, s.prefix) for s in (*RUNS, *MANY_EXIT)}
    lines = [*INTRO, *_survives(list(runs.values())), *_against_frontier(list(runs.values()))]
    for spec in RUNS:
        run = runs[spec.prefix]
        lines += bench_section(run, spec.heading, spec.commands)
        if run.runtime or run.cost:
            lines += frontier_section(run) + runtime_section(run)
        if spec.prefix == "demo":
            lines += earlier_runtime(_read(out_dir, "runtime_speed.csv"))
            lines += user_chain(_read(out_dir, "user_chain.csv"), _read(out_dir, "user_chain_runtime.csv"))
    lines += ["## Many exits and exit combiners", "", "```bash", *MANY_EXIT_COMMANDS, "```", ""]
    combiners = sorted({r["method"].split("+")[0] for s in MANY_EXIT for r in runs[s.prefix].stats if "+" in r["method"]})
    if combiners:
        lines += [f"Every policy alone and composed with each exit combiner ({', '.join(f'`{c}+`' for c in combiners)}; "
                  "[combiners.md](combiners.md)).", ""]  # fmt: skip
    lines += many_exit_table(_read(out_dir, "many_exit_run.csv"))
    for spec in MANY_EXIT:
        run = runs[spec.prefix]
        lines += bench_section(run, spec.heading, spec.commands) + clock_section(run)
        networks = _read(out_dir, f"{spec.prefix}_frontier.csv")
        lines += frontier_networks(run, networks)
        lines += compiled_section(_read(out_dir, f"{spec.prefix}_compiled.csv"), networks, spec.prefix)
    kept = {p: (_read(out_dir, f"{p}_reliability.csv"), _read(out_dir, f"{p}_reliability_accuracy_loss.csv")) for p in RELIABILITY}
    lines += reliability_section(kept, {p: why for p, why in RELIABILITY.items() if why})
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``write``: docs/results.md from the kept CSVs; ``check``: exit 1 when it differs from what they give."""
    ap = argparse.ArgumentParser(prog="python -m eenet.analysis.results_doc", description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=("write", "check"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out"), help="the kept CSVs (default: benchmarks/out)")
    ap.add_argument("--doc", type=Path, default=Path("docs/results.md"), help="the document (default: docs/results.md)")
    args = ap.parse_args(argv)
    text = render(args.out)
    if args.action == "check":
        if not args.doc.is_file() or args.doc.read_text() != text:
            flags = "".join(f" --{k} {v}" for k, v in (("out", args.out), ("doc", args.doc)) if v != ap.get_default(k))
            print(f"{args.doc} is stale: it differs from what {args.out}/*.csv give; run `{WRITE}{flags}`", file=sys.stderr)
            return 1
        return 0
    args.doc.write_text(text)
    print(f"{args.doc}: written from {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
