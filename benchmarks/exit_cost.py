"""Where an intermediate exit's time goes at batch 1, and what it costs next to the block it sits on, per exit head.

    python benchmarks/exit_cost.py                                   # resnet_6, width 8: fashion_mnist_6exit's network
    python benchmarks/exit_cost.py --arch small_cnn_3 --width 32     # the demo's network

For each head of ``eenet.models.HEADS`` (the paper's three convs, one conv, pool + linear) the network is built
(random weights: a duration does not depend on them) and, for every exit k, five pieces are timed per sample at
batch 1, interleaved in one loop (so that the drift of a shared machine hits them alike), each on the inputs it sees
in early-exit inference: the *block* (stage k), the exit's *head*, the *score* (MaxPred's softmax: the policy's
``exit_outputs``), the *decision* (MaxPred's ``leaves_one``: the confidence compared with the threshold and read back
to the host), and the whole *step* as the runtime runs it (``model.step`` + score + decision). *overhead* is what the
step costs beyond its parts (Python and dispatch between them). A row's ``exit_vs_block`` = (head + score + decision)
/ block: the issue's target for an intermediate exit is at most 0.25. Prints the rows and a Markdown table, writes
them to ``--csv`` (default benchmarks/out/exit_cost.csv) and appends the table to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from _results import append_section  # noqa: E402

from eenet.models import HEADS, build_model  # noqa: E402
from eenet.pipeline.logs import device_name  # noqa: E402
from eenet.schedulers import fit_budgets  # noqa: E402

PIECES = ["block", "head", "score", "decision", "step"]
FIELDS = ["arch", "head", "exit", "block_us", "head_us", "score_us", "decision_us", "step_us", "overhead_us", "exit_vs_block",
          "params", "threads", "device"]  # fmt: skip


def time_loop(runs: dict[str, Callable[[int], object]], n: int, repeats: int) -> dict[str, float]:
    """Median over ``repeats`` interleaved passes of each ``runs[name](i)`` for ``i < n``: µs per call."""
    for run in runs.values():  # warm-up
        for i in range(n):
            run(i)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            t0 = time.perf_counter()
            for i in range(n):
                run(i)
            times[name].append((time.perf_counter() - t0) * 1e6 / n)
    return {name: statistics.median(ts) for name, ts in times.items()}


@torch.inference_mode()
def exit_rows(arch: str, width: int, head: str, samples: int, repeats: int) -> list[dict[str, object]]:
    """The timed pieces of every intermediate exit of ``arch`` with intermediate ``head``, at batch 1 (one row each)."""
    torch.manual_seed(0)
    model = build_model(arch, 10, 1, width=width, head=head).eval()
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(1, 1, 28, 28, generator=g) for _ in range(samples)]
    val = torch.randn(1000, 1, 28, 28, generator=g)
    probs = torch.softmax(torch.stack(model(val)), dim=2)
    k_last = model.num_exits - 1
    costs = [float(k + 1) for k in range(model.num_exits)]
    # MaxPred at half the network: its thresholds send some samples out early (a realistic decision)
    (sched,) = fit_budgets("maxpred", {}, probs, None, probs[-1].argmax(1), costs, [0.5 * costs[-1]])
    ins: list[list[object]] = [[model.begin(x) for x in xs]]
    outs, logits = [], []
    for k in range(k_last):
        outs.append([model.advance(k, s) for s in ins[k]])
        logits.append([model.head(k, s) for s in outs[k]])
        ins.append(outs[k])
    rows = []
    for k in range(k_last):
        scores = [sched.exit_outputs(k, (z,)) for z in logits[k]]
        seen = [[sched.exit_outputs(j, (logits[j][i],)) for j in range(k)] + [scores[i]] for i in range(samples)]

        def step(i: int, k: int = k, seen: list = seen) -> bool:
            _, z = model.step(k, ins[k][i])
            return sched.leaves_one(k, seen[i][:k] + [sched.exit_outputs(k, (z,))])

        runs = {
            "block": lambda i, k=k: model.advance(k, ins[k][i]),
            "head": lambda i, k=k: model.head(k, outs[k][i]),
            "score": lambda i, k=k: sched.exit_outputs(k, (logits[k][i],)),
            "decision": lambda i, k=k, seen=seen: sched.leaves_one(k, seen[i]),
            "step": step,
        }
        us = time_loop(runs, samples, repeats)
        exit_us = us["head"] + us["score"] + us["decision"]
        rows.append({
            "arch": arch, "head": head, "exit": k, **{f"{p}_us": round(us[p], 2) for p in PIECES},
            "overhead_us": round(us["step"] - us["block"] - exit_us, 2), "exit_vs_block": round(exit_us / us["block"], 3),
            "params": sum(p.numel() for p in model.heads[k].parameters()), "threads": torch.get_num_threads(),
            "device": device_name(torch.device("cpu")),
        })  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="resnet_6")
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--heads", nargs="+", default=list(HEADS), choices=list(HEADS))
    ap.add_argument("--samples", type=int, default=300, help="distinct inputs timed at batch 1")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--csv", default=str(REPO / "benchmarks" / "out" / "exit_cost.csv"))
    ap.add_argument("--results", default=str(REPO / "benchmarks" / "RESULTS.md"), help="Markdown log appended to ('' for none)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for head in args.heads:
        got = exit_rows(args.arch, args.width, head, args.samples, args.repeats)
        for r in got:
            print(f"{head:12s} exit {r['exit']}: block {r['block_us']:7.1f} us, head {r['head_us']:6.1f}, score {r['score_us']:5.1f}, "
                  f"decision {r['decision_us']:5.1f}, step {r['step_us']:7.1f} (overhead {r['overhead_us']:5.1f}): "
                  f"exit/block {r['exit_vs_block']:.3f}", flush=True)  # fmt: skip
        rows += got
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    table = ["| head | exit | block µs | head µs | score µs | decision µs | step µs | (head+score+decision)/block |"]
    table.append("|---|---|---|---|---|---|---|---|")
    for r in rows:
        table.append(f"| {r['head']} | {r['exit']} | {r['block_us']} | {r['head_us']} | {r['score_us']} | {r['decision_us']} | "
                     f"{r['step_us']} | {r['exit_vs_block']} |")  # fmt: skip
    for head in args.heads:
        ratios = [float(r["exit_vs_block"]) for r in rows if r["head"] == head]
        table.append(f"| {head} | median | | | | | | **{statistics.median(ratios):.3f}** (max {max(ratios):.3f}) |")
    print("\n".join(table))
    if args.results:
        note = (f"`{args.arch}` width {args.width}, random weights, batch 1, {args.threads} thread(s), {rows[0]['device']}; "
                f"medians of {args.repeats} interleaved passes over {args.samples} inputs; µs per sample.")  # fmt: skip
        append_section(args.results, f"Exit cost at batch 1 by head ({args.arch})", note, table)


if __name__ == "__main__":
    main()
