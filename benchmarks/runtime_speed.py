"""Does early exit really make inference faster? The adaptive runtime (eenet.measure.runtime) against the plain network.

    python benchmarks/runtime_speed.py                      # the demo's model and policies (make demo first), CPU
    python benchmarks/runtime_speed.py --synthetic resnet56_3 densenet121_4 --device cuda

For every policy and budget: the *simulated* cost (the exit histogram of the runtime's own decisions times the
per-exit costs measured now, as cost.csv does: ``eenet.measure.costs.run_to_exit`` at batch 1 on a stream of
samples), and the *measured* wall-clock time per sample of the runtime, at batch 1 and at a larger batch, beside the
plain network (every stage and the last
head: the network without early exit) and ``model(x)`` (every stage and head, as cost.csv's last exit) on the same
samples. Timed by eenet.measure.costs.time_per_sample (warm-up pass, ``--repeats`` interleaved repeats).

``--synthetic ARCH``: a randomly initialised CIFAR-shaped network (3x32x32 inputs, 100 classes) on random
inputs, with maxpred fitted on random validation inputs: the exit histogram is what the budget makes it, which
is all the speed depends on.

Prints a Markdown table and appends it, with device, date and commit, to benchmarks/RESULTS.md; the rows go to
benchmarks/out/runtime_speed.csv as well.
"""

from __future__ import annotations

import argparse
import csv
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]

from _results import append_section  # noqa: E402

from eenet.io import read_csv  # noqa: E402
from eenet.measure.costs import measure_latency  # noqa: E402
from eenet.measure.runtime import compare_to_simulation, measure_policies  # noqa: E402
from eenet.models import build_model, load_model, prepare_model  # noqa: E402
from eenet.pipeline.logs import device_name  # noqa: E402
from eenet.records import read_fitted_policy  # noqa: E402
from eenet.schedulers import make_scheduler, scheduler_from_json  # noqa: E402

FIELDS = ["model", "method", "budget", "batch", "simulated_ms", "measured_ms", "measured_q1", "measured_q3", "plain_ms", "full_ms",
          "measured_vs_simulated", "speedup_vs_plain", "speedup_vs_full", "exit_histogram"]  # fmt: skip


def batches_of(x, size: int) -> list:
    n = x.shape[0] if isinstance(x, torch.Tensor) else next(iter(x.values())).shape[0]
    if isinstance(x, dict):
        return [{k: v[i : i + size] for k, v in x.items()} for i in range(0, n, size)]
    return [x[i : i + size] for i in range(0, n, size)]


def measure(model, scheds: dict, x, per_exit_ms: list[float], device, batch_sizes: list[int], repeats: int, name: str) -> list[dict]:
    """Rows for every (method, budget) in ``scheds`` at every batch size."""
    rows = []
    policies = {f"{method}/{budget}": sched for (method, budget), sched in scheds.items()}
    for bs in batch_sizes:
        res = measure_policies(model, policies, batches_of(x, bs), device, warmup=1, repeats=repeats)
        for method, budget in scheds:
            r = {"model": name, "method": method, "budget": budget, "batch": bs,
                 **compare_to_simulation(res[f"{method}/{budget}"], res["full"], per_exit_ms, model.num_exits, res["plain"])}  # fmt: skip
            rows.append(r)
            msg = f"{name} {method} {budget} batch {bs}: simulated {r['simulated_ms']:.4f} ms, measured {r['measured_ms']:.4f} ms "
            print(
                msg + f"(x{r['measured_vs_simulated']:.3f}), plain network {r['plain_ms']:.4f} ms, speed-up x{r['speedup_vs_plain']:.2f}",
                flush=True,
            )
    return rows


def demo_rows(args, device) -> list[dict]:
    from eenet.data.prepare import open_benchmark

    res = REPO / "results" / args.bench
    model, meta = load_model(str(res / "model.pt"), device)
    dataset = str(meta["dataset"])
    test = open_benchmark(dataset, REPO / "data" / dataset, str(meta["arch"]), dict(meta.get("arch_kwargs") or {}), None, ("test",))["test"]
    x = test.inputs(torch.arange(min(args.samples, len(test))), device)
    per_exit = [r["ms"] for r in measure_latency(model, batches_of(x, 1)[:200], warmup=20, repeats=200)]
    per_exit = [max(per_exit[: k + 1]) for k in range(len(per_exit))]  # monotone, as cost.csv
    scheds = {}
    for method in args.methods:
        for budget in args.budgets:
            path = res / "schedulers" / method / f"{budget}.json"
            if path.is_file():
                fitted = read_fitted_policy(path)
                if not fitted.get("infeasible"):
                    scheds[(method, budget)] = scheduler_from_json(fitted)
    cost_csv = read_csv(res / "cost.csv")
    print(f"{args.bench}: per-exit ms now {[round(c, 4) for c in per_exit]}, in cost.csv {[round(float(r['ms']), 4) for r in cost_csv]}")
    # the fitted thresholds are kept; the budget's share of the full cost is what the rows compare against
    return measure(model, scheds, x, per_exit, device, args.batch_sizes, args.repeats, args.bench)


def synthetic_rows(arch: str, args, device) -> list[dict]:
    torch.manual_seed(0)
    model = prepare_model(build_model(arch, 100, 3), device).eval()
    g = torch.Generator().manual_seed(1)
    val = torch.randn(2000, 3, 32, 32, generator=g).to(device)
    x = torch.randn(args.samples, 3, 32, 32, generator=g).to(device)
    if device.type == "cuda":
        val, x = val.contiguous(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    per_exit = [r["ms"] for r in measure_latency(model, batches_of(x, 1)[:100], warmup=20, repeats=100)]
    per_exit = [max(per_exit[: k + 1]) for k in range(len(per_exit))]
    with torch.inference_mode():
        probs = torch.cat([torch.stack([F.softmax(z.float(), 1) for z in model(b)]).cpu() for b in batches_of(val, 500)], dim=1)
    labels = probs[-1].argmax(1)  # labels only matter for accuracy, not for speed
    scheds = {("maxpred", b): make_scheduler("maxpred").fit(probs, labels, per_exit, b * per_exit[-1]) for b in args.budgets}
    print(f"{arch}: per-exit ms {[round(c, 4) for c in per_exit]}")
    return measure(model, scheds, x, per_exit, device, args.batch_sizes, args.repeats, f"{arch} (random init, 3x32x32)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="fashion_mnist")
    ap.add_argument("--synthetic", nargs="*", default=[], help="architectures to time on random CIFAR-shaped inputs instead")
    ap.add_argument("--methods", nargs="+", default=["maxpred", "entropy", "eenet"])
    ap.add_argument("--budgets", nargs="+", type=float, default=[0.45, 0.5, 0.6, 0.8])
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 256])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "RESULTS.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = [r for arch in args.synthetic for r in synthetic_rows(arch, args, device)] if args.synthetic else demo_rows(args, device)

    csv_path = REPO / "benchmarks" / "out" / "runtime_speed.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    fields = ["date", "device", *FIELDS]
    old = list(csv.DictReader(open(csv_path))) if csv_path.exists() else []
    with open(csv_path, "w", newline="") as fh:  # earlier rows kept, under today's columns (empty where they had none)
        w = csv.DictWriter(fh, fieldnames=fields, restval="", extrasaction="ignore")
        w.writeheader()
        w.writerows(old)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        for r in rows:
            w.writerow({"date": stamp, "device": device_name(device), **r})
    lines = [
        "| model | method | budget | batch | simulated | measured (IQR) | measured / simulated | plain network | speed-up over plain "
        "| model(x) | speed-up over model(x) | exits |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['method']} | {r['budget']} | {r['batch']} | {r['simulated_ms']:.4f} | {r['measured_ms']:.4f} "
            f"({r['measured_q1']:.4f}–{r['measured_q3']:.4f}) | {r['measured_vs_simulated']:.3f} | {r['plain_ms']:.4f} | "
            f"x{r['speedup_vs_plain']:.2f} | {r['full_ms']:.4f} | x{r['speedup_vs_full']:.2f} | {r['exit_histogram']} |"
        )
    title = f"Adaptive runtime vs the plain network — {device_name(device)}, {args.threads} thread(s), torch {torch.__version__}"
    note = (f"{args.samples} samples; mean per sample, per ten batches the median of {args.repeats} interleaved repeats (IQR: of "
            "whole passes); simulated = exit histogram x per-exit cost (decision included) measured at batch 1 in the same process "
            "just before; ms per sample.")  # fmt: skip
    print(append_section(args.out, title, note, lines))


if __name__ == "__main__":
    main()
