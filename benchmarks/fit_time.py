"""How long does fitting a policy take, against the size of the validation set?

    python benchmarks/fit_time.py [--bench fashion_mnist] [--sizes 1000 5000 20000] [--budget 0.5]

Fits every policy of the benchmark's config (EENet with the benchmark's own hyper-parameters) at one budget on
validation sets of each size, drawn from the benchmark's cached validation probabilities (results/<bench>/logits/
val.safetensors, made by `make demo`): sizes above the cached set are drawn with replacement, seeded. Wall-clock
seconds, single process, torch threads as given. Appends a table to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]

from _results import append_section  # noqa: E402

from eenet.io import read_csv  # noqa: E402
from eenet.measure.costs import read_costs, resolve_budget  # noqa: E402
from eenet.pipeline.logs import device_name  # noqa: E402
from eenet.records import read_logits_cache  # noqa: E402
from eenet.schedulers import METHODS, accepted_params, make_scheduler  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="fashion_mnist")
    ap.add_argument("--sizes", nargs="+", type=int, default=[1000, 5000, 20000])
    ap.add_argument("--budget", type=float, default=0.5, help="fraction of the full model's cost")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "RESULTS.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["benchmarks"][args.bench]
    # every registered policy (single exits aside), whatever the benchmark's config fits
    methods = [m for m in METHODS if m != "static"]
    tensors, _ = read_logits_cache(REPO / "results" / args.bench / "logits" / "val.safetensors", split="val")
    probs, labels = tensors["probs"], tensors["labels"]
    costs, _, _ = read_costs(read_csv(REPO / "results" / args.bench / "cost.csv"))
    budget = resolve_budget(args.budget, "fraction", costs)
    rows = []
    for n in args.sizes:
        g = torch.Generator().manual_seed(n)
        idx = (
            torch.randperm(probs.shape[1], generator=g)[:n] if n <= probs.shape[1] else torch.randint(0, probs.shape[1], (n,), generator=g)
        )
        p, y = probs[:, idx], labels[idx]
        for method in methods:
            # the benchmark's `eenet:` block, for EENet and its ablations (as the workflow passes it)
            hyper = dict(cfg.get("eenet", {})) if method.startswith("eenet") else {}
            params = accepted_params(method, hyper)
            t0 = time.perf_counter()
            sched = make_scheduler(method, **params).fit(p, y, costs, budget)
            seconds = time.perf_counter() - t0
            extra = f", {sched.report_['epochs_run']} epochs" if method.startswith("eenet") else ""
            rows.append((n, method, seconds, sched.val_accuracy_, extra))
            print(f"{n:>6} {method:<12} {seconds:8.2f} s  val acc {sched.val_accuracy_:.4f}{extra}", flush=True)
    lines = [
        "| validation samples | " + " | ".join(methods) + " | all |",
        "|---|" + "---|" * (len(methods) + 1),
    ]
    for n in args.sizes:
        mine = [r for r in rows if r[0] == n]
        cells = [f"{r[2]:.2f}{' (' + r[4][2:] + ')' if r[4] else ''}" for r in mine]
        lines.append(f"| {n:,} | " + " | ".join(cells) + f" | {sum(r[2] for r in mine):.1f} |")
    title = f"Scheduler fit time — {device_name(torch.device('cpu'))}, {args.threads} thread(s), torch {torch.__version__}"
    note = (f"{args.bench}, budget {args.budget} of the full cost, validation sets drawn from the cached validation "
            "probabilities (with replacement above their size); seconds.")  # fmt: skip
    print(append_section(args.out, title, note, lines))


if __name__ == "__main__":
    main()
