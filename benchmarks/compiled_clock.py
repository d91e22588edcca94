"""A run's compiled clock, kept for docs/results.md: every seed's compiled.csv (rule measure_compiled) in one file.

    python benchmarks/compiled_clock.py --run fashion_mnist_6exit_light

Runs nothing: concatenates results/<run>/seed<s>/compiled.csv (or results/<run>/compiled.csv for one seed) into
``benchmarks/out/<run>_compiled.csv`` and prints, per policy and budget, the mean over seeds of the compiled time on the
whole test set, the speed-up over the compiled plain network, and compiled over eager; then the cuts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from eenet.io import read_csv, write_csv  # noqa: E402
from eenet.measure.compiled_runtime import COMPILED_FIELDS  # noqa: E402


def compiled_files(run: str) -> list[Path]:
    """Every seed's compiled.csv of ``run``, in seed order (the run's own for a run of one seed)."""
    base = REPO / "results" / run
    seeded = sorted(base.glob("seed*/compiled.csv"), key=lambda p: int(p.parent.name.removeprefix("seed")))
    if seeded:
        return seeded
    if (base / "compiled.csv").is_file():
        return [base / "compiled.csv"]
    sys.exit(f"results/{run}: no compiled.csv (a run with compiled.methods: snakemake results/{run}/[seed<s>/]compiled.csv)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a benchmark with compiled.methods (results/<run>/)")
    args = ap.parse_args()
    rows = [row for path in compiled_files(args.run) for row in read_csv(path)]
    out = REPO / "benchmarks" / "out" / f"{args.run}_compiled.csv"
    write_csv(out, rows, COMPILED_FIELDS)
    print("| policy | budget | compiled ms (whole test set) | speed-up over the compiled plain network | compiled / eager | seeds |")
    print("|---|---|---|---|---|---|")
    for key in dict.fromkeys((r["method"], r["budget_value"]) for r in rows):
        mine = [r for r in rows if (r["method"], r["budget_value"]) == key]
        mean = {c: statistics.fmean(float(r[c]) for r in mine) for c in ("test_compiled_ms", "speedup_vs_plain_test", "compiled_vs_eager")}
        print(f"| {key[0]} | {key[1]} | {mean['test_compiled_ms']:.3f} | ×{mean['speedup_vs_plain_test']:.2f} | "
              f"{mean['compiled_vs_eager']:.2f} | {len(mine)} |")  # fmt: skip
    print(f"-> {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
