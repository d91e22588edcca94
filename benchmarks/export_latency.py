"""The exported program (`eenet export`: torch.export with torch.cond) and the compiled package (`eenet export
--compiled`: AOTInductor, one segment per exit) beside the adaptive runtime, at batch 1.

    python benchmarks/export_latency.py                                   # the demo's model and policies (make demo first)
    python benchmarks/export_latency.py --results results/fashion_mnist --methods maxpred eenet --samples 500

For every fitted policy of the chosen methods: the model and the policy exported to a .pt2 file (the time it takes),
loaded back with ``torch.export.load`` (as a user without this package would), and timed per sample at batch 1 on the
first ``--samples`` test images beside ``eenet.measure.runtime.adaptive_forward`` and the full model. All three start from the
same ``uint8`` images: the exported program normalises inside, the runtime and the full model are timed with
``eenet.data.normalize`` in front. Timed by ``eenet.measure.costs.time_per_sample`` (a warm-up pass, ``--repeats`` interleaved
repeats, the median of each chunk's repeats), under ``torch.inference_mode``, ``--threads`` CPU threads (the demo's
profile uses 1). A last row, ``static (last exit)``: the whole network as a policy, exported without any ``torch.cond``
beside the runtime running every stage: what the exported program costs apart from its exit decisions.
``exits_agree``: the share of samples the exported program sends to the runtime's exit (1.0 expected).
``compiled_*``: the same for the compiled package (``eenet.compiled``: compiled in ``compile_s`` seconds, loaded with
``CompiledPolicy.load``, called on the ``uint8`` image); ``compiled_vs_runtime`` its ms over the runtime's (``--no-compiled``
leaves it out: compiling takes ~10-20 s per exit).
``exported_autograd_ms``: the same program called with autograd on (no ``inference_mode``), on the first 50 images: why
docs/use.md says to call it under ``torch.inference_mode()``.

Prints a Markdown table and appends it, with device, date and commit, to benchmarks/RESULTS.md; the rows go to
benchmarks/out/export_latency.csv.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]

from _results import append_section  # noqa: E402

from eenet.compiled import CompiledPolicy, compile_policy  # noqa: E402
from eenet.data import normalize  # noqa: E402
from eenet.data.prepare import open_benchmark  # noqa: E402
from eenet.export import export_policy, load_exported  # noqa: E402
from eenet.io import load_tensors, read_json, write_csv  # noqa: E402
from eenet.measure.costs import time_per_sample  # noqa: E402
from eenet.measure.runtime import adaptive_forward  # noqa: E402
from eenet.models import load_model  # noqa: E402
from eenet.pipeline.logs import device_name  # noqa: E402
from eenet.predict import dataset_of, load_policy  # noqa: E402
from eenet.schedulers import StaticScheduler  # noqa: E402

FIELDS = ["method", "budget", "samples", "export_s", "runtime_ms", "runtime_q1", "runtime_q3", "exported_ms", "exported_q1",
          "exported_q3", "full_ms", "exported_vs_runtime", "exported_autograd_ms", "exits_agree", "exit_histogram",
          "compile_s", "compiled_ms", "compiled_q1", "compiled_q3", "compiled_vs_runtime", "compiled_exits_agree"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="results/fashion_mnist", help="a finished benchmark's results directory")
    ap.add_argument("--methods", nargs="+", default=["maxpred", "entropy", "eenet"])
    ap.add_argument("--budgets", nargs="*", default=None, help="budget values (default: every fitted one)")
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-append", action="store_true", help="do not append the table to benchmarks/RESULTS.md")
    ap.add_argument("--no-static", action="store_true", help="leave out the whole network as a policy (no torch.cond in it)")
    ap.add_argument("--no-compiled", action="store_true", help="leave out the compiled package (eenet export --compiled)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    res = Path(args.results)
    model, meta = load_model(str(res / "model.pt"))
    spec = dataset_of(res, meta)
    data = res.resolve().parent.parent / "data" / spec.name
    test = open_benchmark(spec, data, str(meta["arch"]), dict(meta.get("arch_kwargs") or {}), None, ("test",))["test"]
    n = min(args.samples, len(test))
    images = [test.images[i : i + 1] for i in range(n)]
    device = torch.device("cpu")
    rows = []
    # the policies, and the whole network as a policy (static, last exit): the exported program without a torch.cond
    policies = []
    for method in args.methods:
        for f in sorted((res / "schedulers" / method).glob("*.json"), key=lambda f: float(f.stem)):
            if (not args.budgets or f.stem in args.budgets) and not read_json(f).get("infeasible"):
                policies.append((method, f.stem, load_policy(f, res / "model.pt")[0]))
    if not args.no_static:
        val, _ = load_tensors(res / "logits" / "val.safetensors")
        costs = read_json(next((res / "schedulers").glob("*/*.json")))["costs"]
        last = StaticScheduler(exit_index=model.num_exits - 1).fit(val["probs"], val["labels"], costs, costs[-1])
        policies.append(("static (last exit)", "", last))
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        for method, budget, sched in policies:
            t0 = time.perf_counter()
            path = export_policy(model, sched, spec, meta, Path(tmp) / f"{len(rows)}.pt2", {"method": sched.method})
            export_s = time.perf_counter() - t0
            program, _ = load_exported(path)
            runs = {
                "runtime": lambda x, s=sched: adaptive_forward(model, s, normalize(x, spec.mean, spec.std)),
                "exported": program,
                "full": lambda x: model(normalize(x, spec.mean, spec.std)),
            }
            if not args.no_compiled:
                t0 = time.perf_counter()
                with torch.inference_mode(False):
                    compiled = compile_policy(model, sched, spec, meta, Path(tmp) / f"{len(rows)}_compiled.pt2", {"method": sched.method})
                compile_s = time.perf_counter() - t0
                runs["compiled"] = CompiledPolicy.load(compiled)
            exits_rt = torch.cat([runs["runtime"](x)[1] for x in images])
            exits_ex = torch.cat([program(x)[1] for x in images])
            timing = time_per_sample(runs, images, device, warmup=1, repeats=args.repeats)
            with torch.inference_mode(False):
                grad = time_per_sample({"exported": program}, [x.clone() for x in images[:50]], device, warmup=1, repeats=1)
            rt, ex = timing["runtime"], timing["exported"]
            if not args.no_compiled:
                exits_co = torch.tensor([runs["compiled"](x)[1] for x in images])
                co = timing["compiled"]
                compiled_row = {
                    "compile_s": round(compile_s, 1), "compiled_ms": co["ms"], "compiled_q1": co["ms_q1"], "compiled_q3": co["ms_q3"],
                    "compiled_vs_runtime": co["ms"] / rt["ms"], "compiled_exits_agree": float((exits_rt == exits_co).double().mean()),
                }  # fmt: skip
            else:
                compiled_row = dict.fromkeys(FIELDS[-6:], "")
            rows.append({
                "method": method, "budget": budget, "samples": n, "export_s": round(export_s, 2),
                "runtime_ms": rt["ms"], "runtime_q1": rt["ms_q1"], "runtime_q3": rt["ms_q3"],
                "exported_ms": ex["ms"], "exported_q1": ex["ms_q1"], "exported_q3": ex["ms_q3"], "full_ms": timing["full"]["ms"],
                "exported_vs_runtime": ex["ms"] / rt["ms"], "exported_autograd_ms": grad["exported"]["ms"],
                "exits_agree": float((exits_rt == exits_ex).double().mean()),
                "exit_histogram": torch.bincount(exits_rt, minlength=model.num_exits).tolist(), **compiled_row,
            })  # fmt: skip
            r = rows[-1]
            print(f"{method} {budget}: runtime {r['runtime_ms']:.4f} ms, exported {r['exported_ms']:.4f} ms "
                  f"(x{r['exported_vs_runtime']:.2f}), full {r['full_ms']:.4f} ms, exits agree {r['exits_agree']:.4f}; "
                  f"compiled {r['compiled_ms'] or float('nan'):.4f} ms (x{r['compiled_vs_runtime'] or float('nan'):.2f}, "
                  f"{r['compile_s']} s to compile), exits agree {r['compiled_exits_agree']}", flush=True)  # fmt: skip
    out = REPO / "benchmarks" / "out" / "export_latency.csv"
    write_csv(out, rows, FIELDS)
    table = [
        "| method | budget | runtime ms (IQR) | exported ms (IQR) | exported / runtime | full ms | autograd on | exits agree | exits "
        "| compiled ms (IQR) | compiled / runtime | compiled exits agree | compile s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        table.append(
            f"| {r['method']} | {r['budget']} | {r['runtime_ms']:.4f} ({r['runtime_q1']:.4f}–{r['runtime_q3']:.4f}) | "
            f"{r['exported_ms']:.4f} ({r['exported_q1']:.4f}–{r['exported_q3']:.4f}) | {r['exported_vs_runtime']:.2f} | "
            f"{r['full_ms']:.4f} | {r['exported_autograd_ms']:.2f} | {r['exits_agree']:.4f} | {r['exit_histogram']} | "
            + (f"{r['compiled_ms']:.4f} ({r['compiled_q1']:.4f}–{r['compiled_q3']:.4f}) | {r['compiled_vs_runtime']:.2f} | "
               f"{r['compiled_exits_agree']:.4f} | {r['compile_s']} |" if r["compiled_ms"] != "" else "– | – | – | – |")
        )  # fmt: skip
    print("\n".join(table))
    if not args.no_append:
        what = "Exported program" + ("" if args.no_compiled else " and compiled package")
        title = f"{what} vs runtime, batch 1 — {device_name(device)}, {args.threads} thread(s), torch {torch.__version__}"
        note = f"{res} ({meta['arch']}), first {n} test images; ms per sample; rows also in benchmarks/out/export_latency.csv"
        append_section(REPO / "benchmarks" / "RESULTS.md", title, note, table)


if __name__ == "__main__":
    main()
