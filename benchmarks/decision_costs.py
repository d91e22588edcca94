"""Does counting each policy's own decision work in the costs make the simulated cost match the clock at batch 1?

    python benchmarks/decision_costs.py                          # the demo's model and caches (make demo first)
    python benchmarks/decision_costs.py --constructed            # a small 6-exit network on random inputs instead

For every policy: the per-exit cost of the network as cost.csv measures it (eenet.measure.costs.run_to_exit: a softmax
and a max at every exit, batch 1, a stream of distinct samples), the policy's own decision overhead per exit
(eenet.measure.overhead.decision_overhead on single validation samples), and fits at the same budget: *before*
against cost.csv's costs alone, *after* against the effective costs (cost.csv + the decisions at exits 0..k, what
fit_scheduler does with profile.decision_costs), with the decisions timed after the network's own stage k
(``stage``: eenet.measure.overhead.network_stages, what fit_scheduler does) and, for comparison, after the touch of
an 8 MiB buffer (``evict``, the probe before it). Both run through the adaptive runtime at batch 1 on the same test
samples, interleaved with every exit timed as cost.csv times it (so that the drift of a shared machine between two
jobs is left out), and each is compared with its own simulated cost (its exit histogram x those exit costs, plus
its decisions after): measured / simulated, which should be within 10 % after. Prints one line per policy and a Markdown table (``--csv``:
the rows to a CSV file too).

The demo's costs are profiled again here, in the same process as the runtime (cost.csv may come from another state
of the machine); ``--constructed``: ``resnet_6`` (6 exits, width ``--width``) randomly initialised on 1x28x28 inputs,
labels its own last exit's predictions (they matter for accuracy only, not for speed).
"""

from __future__ import annotations

import argparse
import csv
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]

from eenet.measure.costs import measure_latency, run_to_exit, time_per_sample  # noqa: E402
from eenet.measure.overhead import decision_overhead, effective_costs, network_stages  # noqa: E402
from eenet.measure.runtime import adaptive_forward  # noqa: E402
from eenet.models import build_model, load_model  # noqa: E402
from eenet.pipeline.logs import device_name  # noqa: E402
from eenet.schedulers import fit_budgets, realised_cost  # noqa: E402

METHODS = ["maxpred", "entropy", "maxpred_ts", "patience", "eenet", "ztw_ens+maxpred", "ztw_ens+patience", "mie+maxpred"]
PROBES = ("stage", "evict")
FAST_EENET = {"lr": 0.01, "epochs": 30, "patience": 10, "restarts": 2}
WHEN = ("before", *(f"after_{p}" for p in PROBES))
FIELDS = ["method", "budget_ms", "decision_ms", "decision_ms_evict"] + [
    f"{what}_{when}" for when in WHEN for what in ("ms_vs_sim", "measured_ms", "simulated_ms", "mean_exit")
]


def softmax_cache(model, x: torch.Tensor, size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, probs)`` ``[K, N, C]`` of every exit: what cache_logits stores."""
    with torch.inference_mode():
        z = torch.cat([torch.stack([o.float() for o in model(x[i : i + size])]) for i in range(0, x.shape[0], size)], dim=1)
    return z, F.softmax(z, dim=2)


def constructed(args) -> tuple:
    torch.manual_seed(0)
    model = build_model("resnet_6", 10, 1, width=args.width).eval()
    g = torch.Generator().manual_seed(1)
    val_x, test_x = torch.randn(args.val, 1, 28, 28, generator=g), torch.randn(args.samples, 1, 28, 28, generator=g)
    logits, probs = softmax_cache(model, val_x)
    return model, logits, probs, probs[-1].argmax(1), [test_x[i : i + 1] for i in range(args.samples)], "resnet_6 (random init)"


def demo(args) -> tuple:
    from eenet.data.prepare import open_benchmark
    from eenet.records import read_logits_cache

    res = REPO / "results" / args.bench
    model, meta = load_model(str(res / "model.pt"), torch.device("cpu"))
    val, _ = read_logits_cache(res / "logits" / "val.safetensors", split="val")
    dataset = str(meta["dataset"])
    test = open_benchmark(dataset, REPO / "data" / dataset, str(meta["arch"]), dict(meta.get("arch_kwargs") or {}), None, ("test",))["test"]
    idx = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[: args.samples].sort().values
    batches = [test.inputs(idx[i : i + 1], torch.device("cpu")) for i in range(len(idx))]
    return model.eval(), val.get("logits"), val["probs"], val["labels"], batches, f"{args.bench} (demo model)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="fashion_mnist")
    ap.add_argument("--constructed", action="store_true", help="a small constructed network even where the demo's results exist")
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--budget", type=float, default=0.5, help="fraction of the last exit's cost")
    ap.add_argument("--samples", type=int, default=300, help="test samples timed at batch 1")
    ap.add_argument("--val", type=int, default=2000, help="--constructed: validation samples")
    ap.add_argument("--width", type=int, default=16, help="--constructed: resnet_6's width")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--csv", help="also write the rows to this CSV file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    use_demo = not args.constructed and (REPO / "results" / args.bench / "model.pt").is_file()
    if not use_demo and not args.constructed:
        print(f"results/{args.bench}/model.pt not found (make demo first): timing a constructed network instead")
    model, logits, probs, labels, batches, name = demo(args) if use_demo else constructed(args)
    costs = [r["ms"] for r in measure_latency(model, batches[:200], warmup=1, repeats=args.repeats)]
    costs = [max(costs[: k + 1]) for k in range(len(costs))]  # monotone, as cost.csv
    budget = args.budget * costs[-1]
    print(f"{name}, {device_name(torch.device('cpu'))}, {args.threads} thread(s): per-exit ms {[round(c, 4) for c in costs]}, "
          f"budget {budget:.4f} ms")  # fmt: skip
    stage = network_stages(model, batches[0])  # what fit_scheduler runs before each timed decision

    def measured(policy, probe):  # as fit_scheduler measures it, at decision_overhead's defaults
        t0 = time.perf_counter()
        got = decision_overhead(policy, logits, probs, stage=stage if probe == "stage" else None)
        print(f"{policy.method}: decision overhead ({probe}) measured in {time.perf_counter() - t0:.2f} s", flush=True)
        return got

    scheds = {}
    for method in args.methods:
        params = FAST_EENET if method.startswith("eenet") else {}
        (scheds[f"{method}/before"],) = fit_budgets(method, params, probs, logits, labels, costs, [budget])
        for probe in PROBES:
            (after,) = fit_budgets(method, params, probs, logits, labels, costs, [budget], overhead=partial(measured, probe=probe))
            assert after.costs_ == effective_costs(costs, after.decision_ms_)
            scheds[f"{method}/after_{probe}"] = after
    # the exits (as cost.csv times them) and the policies (through the runtime) timed in one interleaved run, so that
    # the drift of a shared machine between two jobs is left out of the comparison
    exits = {name: torch.cat([adaptive_forward(model, s, b)[1] for b in batches]) for name, s in scheds.items()}
    runs = {f"exit{k}": partial(run_to_exit, model, exit_index=k) for k in range(model.num_exits)}
    runs.update({name: partial(adaptive_forward, model, s) for name, s in scheds.items()})
    timing = time_per_sample(runs, batches, torch.device("cpu"), 1, args.repeats)
    now = [timing[f"exit{k}"]["ms"] for k in range(model.num_exits)]
    now = [max(now[: k + 1]) for k in range(len(now))]
    print(f"per-exit ms in the same run as the policies {[round(c, 4) for c in now]}")
    rows = []
    for method in args.methods:
        dec = {p: scheds[f"{method}/after_{p}"].decision_ms_ for p in PROBES}
        r = {"method": method, "budget_ms": round(budget, 4), "decision_ms": [round(d, 4) for d in dec["stage"]],
             "decision_ms_evict": [round(d, 4) for d in dec["evict"]]}  # fmt: skip
        for when, per_exit in (("before", now), *((f"after_{p}", effective_costs(now, dec[p])) for p in PROBES)):
            ex = exits[f"{method}/{when}"]
            sim = realised_cost(ex, torch.tensor(per_exit, dtype=torch.float64))
            ms = timing[f"{method}/{when}"]["ms"]
            r.update({f"ms_vs_sim_{when}": round(ms / sim, 3), f"measured_ms_{when}": round(ms, 4), f"simulated_ms_{when}": round(sim, 4),
                      f"mean_exit_{when}": round(float(ex.double().mean()), 3)})  # fmt: skip
        rows.append(r)
        print(f"{method:12s} overhead/exit {[round(1000 * d, 1) for d in dec['stage']]} us; measured/simulated "
              f"before x{r['ms_vs_sim_before']:.3f} ({r['measured_ms_before']:.4f}/{r['simulated_ms_before']:.4f} ms), "
              f"after (stage) x{r['ms_vs_sim_after_stage']:.3f}, after (evict) x{r['ms_vs_sim_after_evict']:.3f}; "
              f"mean exit {r['mean_exit_before']} -> {r['mean_exit_after_stage']}", flush=True)  # fmt: skip
    print("\n| policy | overhead per exit after the stage (µs) | measured/simulated before | after (stage) | after (8 MiB buffer) |")
    print("|---|---|---|---|---|")
    for r in rows:
        per_exit = " ".join(f"{1000 * d:.1f}" for d in r["decision_ms"])
        ratios = " | ".join(f"{r[f'ms_vs_sim_{when}']:.3f}" for when in WHEN)
        print(f"| {r['method']} | {per_exit} | {ratios} |")
    if not args.csv:
        return
    with open(args.csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
