"""The plain networks of a run's frontier with their measured time and test accuracy, kept for docs/results.md.

    python benchmarks/frontier_networks.py --run fashion_mnist_6exit_light

Runs nothing: for each seed's run of ``--run`` (results/<run>/seed<s>/, or results/<run>/ for one seed) it reads
cost.csv, frontier.csv and the cached test outputs of the multi-exit network and of each network trained alone
(:func:`eenet.analysis.frontier.read_frontier`: the points compute_stats compares every policy with, ms per sample at
batch 1 on cost.csv's clock) and writes ``benchmarks/out/<run>_frontier.csv``: seed, network (``cut<k>``: the
multi-exit network cut after exit ``k``; ``depth<k>``, ``width<m>``: trained alone), kind, ms, FLOPs, parameters and
test accuracy. Prints the table, with each network's mean over seeds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from eenet.analysis.frontier import read_frontier  # noqa: E402
from eenet.io import read_csv, write_csv  # noqa: E402
from eenet.records import read_logits_cache  # noqa: E402

FIELDS = ["seed", "network", "kind", "ms", "flops", "parameters", "test_accuracy"]


def seed_runs(run: str) -> list[tuple[str, Path]]:
    """``(seed, directory)`` of every seed's run of ``run`` (its own directory for a run of one seed)."""
    base = REPO / "results" / run
    seeded = sorted(base.glob("seed*/frontier.csv"), key=lambda p: int(p.parent.name.removeprefix("seed")))
    if seeded:
        return [(p.parent.name.removeprefix("seed"), p.parent) for p in seeded]
    if (base / "frontier.csv").is_file():
        return [("", base)]
    sys.exit(f"results/{run}: no frontier.csv (a run with frontier.trained that has run frontier_cost)")


def rows_of(seed: str, run_dir: Path) -> list[dict[str, object]]:
    """One row per network of the run's frontier (see the module docstring)."""
    tensors, _ = read_logits_cache(run_dir / "logits" / "test.safetensors", split="test")
    table = read_csv(run_dir / "frontier.csv")
    trained = [r["network"] for r in table if r["kind"] != "cut"]
    # the files compute_stats reads (planning.frontier_files): frontier.csv, then each trained network's test cache
    files = [str(run_dir / "frontier.csv")] + [str(run_dir / "frontier" / n / "logits" / "test.safetensors") for n in trained]
    points = read_frontier(read_csv(run_dir / "cost.csv"), files, tensors["probs"], tensors["labels"])
    extra = {r["network"]: r for r in table}
    return [
        {"seed": seed, "network": p["network"], "kind": p["kind"], "ms": p["ms"], "flops": extra[p["network"]]["flops"],
         "parameters": extra[p["network"]]["parameters"], "test_accuracy": p["accuracy"]}
        for p in points
    ]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a benchmark with frontier.trained (results/<run>/)")
    args = ap.parse_args()
    rows = [row for seed, d in seed_runs(args.run) for row in rows_of(seed, d)]
    out = REPO / "benchmarks" / "out" / f"{args.run}_frontier.csv"
    write_csv(out, rows, FIELDS)
    print("| network | kind | ms (mean over seeds) | test accuracy (%, mean) | seeds |\n|---|---|---|---|---|")
    for net in dict.fromkeys(str(r["network"]) for r in rows):
        mine = [r for r in rows if r["network"] == net]
        ms = statistics.fmean(float(r["ms"]) for r in mine)
        acc = statistics.fmean(float(r["test_accuracy"]) for r in mine)
        print(f"| {net} | {mine[0]['kind']} | {ms:.3f} | {100 * acc:.2f} | {len(mine)} |")
    print(f"-> {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
