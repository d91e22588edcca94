"""The README's figure: the demo's accuracy against realised cost, drawn by the pipeline's own plotting code
(:func:`eenet.analysis.plotting.plot_curve`) from the recorded demo run's CSVs, so no results/ directory is needed.

    python benchmarks/demo_curve.py [--out docs/img/demo_curve.png]

Reads benchmarks/out/demo_summary.csv (a row per policy and budget, and one per single exit), demo_stats.csv (each
policy's mean accuracy over the budgets, in the legend) and demo_cost.csv (the device; the plain network and the
network cut after each exit, the grey line). The oracle's frontier needs the test outputs, which are not kept: the
oracle's rows at the budgets are drawn instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from eenet.analysis.plotting import plot_curve
from eenet.analysis.summary import auc_by_method, curve_caption
from eenet.io import read_csv
from eenet.measure.costs import read_costs, read_plain_cost

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"


def summary_rows(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """summary.csv's rows as plot_curve reads them (numbers, booleans; no seed band)."""
    return [
        {
            **r,
            "test_accuracy": float(r["test_accuracy"]),
            "test_cost_ms": float(r["test_cost_ms"]),
            "infeasible": r["infeasible"] == "True",
            "test_accuracy_min": None,
            "test_accuracy_max": None,
        }
        for r in rows
    ]


def cuts(cost_rows: list[dict[str, str]], rows: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """The plain-network frontier: (ms, accuracy) of the network cut after each exit (cost.csv's ``cut_ms``; the last,
    the plain network's ``plain_ms``), with that exit's test accuracy (the single exit's summary row)."""
    accuracy = {r["method"]: r["test_accuracy"] for r in rows}
    ordered = sorted(cost_rows, key=lambda r: int(r["exit"]))
    points = []
    for k, r in enumerate(ordered):
        ms = r["plain_ms"] if k == len(ordered) - 1 else r["cut_ms"]
        if ms:
            points.append((float(ms), accuracy[f"static_exit{k}"]))
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "img" / "demo_curve.png"), help="the PNG to write")
    args = parser.parse_args()
    import matplotlib

    matplotlib.rcParams["figure.dpi"] = 140
    cost_rows = read_csv(OUT / "demo_cost.csv")
    costs_ms, _, meta = read_costs(cost_rows)
    rows = summary_rows(read_csv(OUT / "demo_summary.csv"))
    n_test = sum(int(x) for x in next(r for r in rows if r["method"] == "static_exit0")["exit_histogram"].strip("[]").split(","))
    caption, plain_ms = curve_caption(meta, n_test, "simulated", [], read_plain_cost(cost_rows), costs_ms[-1])
    caption += " Recorded run: benchmarks/out/demo_*.csv (the oracle's frontier is not drawn)."
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    bench = rows[0]["bench"]
    auc = auc_by_method(read_csv(OUT / "demo_stats.csv"))
    plot_curve(rows, f"{bench}: accuracy vs. average latency", caption, [args.out], None, "simulated", auc, plain_ms, cuts(cost_rows, rows))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
