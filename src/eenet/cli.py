"""``eenet``: what a user does with a finished run outside Snakemake.

    eenet predict results/fashion_mnist --method maxpred --budget 0.5 my_images/     # CSV of predictions and exits
    eenet export results/fashion_mnist --method maxpred --budget 0.5 -o maxpred.pt2   # one file, PyTorch alone
    eenet export results/fashion_mnist --method maxpred --budget 0.5 --compiled -o maxpred_compiled.pt2  # AOT-compiled
    eenet stats results/fashion_mnist/stats.csv                                        # the README's Markdown table
    eenet lineage results/fashion_mnist/curve.pdf                                      # the artifacts behind a file

Exit status: 0 done; 1 ``lineage`` found stale artifacts; 2 a wrong path, budget or policy (one line on stderr).
``python -m eenet.analysis.stats`` and ``python -m eenet.pipeline.lineage`` still work, as aliases.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
from pathlib import Path

__all__ = ["main"]


def _policy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", metavar="RESULTS_DIR", help="a benchmark's results directory, e.g. results/fashion_mnist")
    p.add_argument("--method", required=True, help="the policy, e.g. maxpred, entropy, eenet (a folder of RESULTS_DIR/schedulers)")
    p.add_argument("--budget", required=True, help="the budget it was fitted at, as in the config, e.g. 0.5")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="eenet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("predict", help="run a fitted policy on image files or texts -> CSV", description=(
        "Run the model of RESULTS_DIR under its fitted policy (METHOD at BUDGET) through the adaptive runtime. INPUTS: image "
        "files or folders of images (image benchmarks), or CSV / JSON-lines files with a text column (text benchmarks). "
        "Writes a CSV: input, prediction (class name), exit, confidence, ms (per sample of its batch)."))  # fmt: skip
    _policy_args(p)
    p.add_argument("inputs", metavar="INPUTS", nargs="+")
    p.add_argument("-o", "--output", default="-", help="the CSV file to write (default: standard output)")
    p.add_argument("--batch-size", type=int, default=1, help="samples run at once (default 1: the latency of a single request)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, or auto (default cpu)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    p.add_argument("--compiled", metavar="PACKAGE", default=None, help=(
        "run the compiled package PACKAGE (`eenet export --compiled`; compiled into it first when the file does not exist, "
        "~10-20 s per exit) instead of the Python runtime: image models, batch 1, CPU"))  # fmt: skip

    p = sub.add_parser("export", help="the model and its policy as one file that runs with PyTorch alone", description=(
        "Export the model of RESULTS_DIR with its fitted policy (METHOD at BUDGET) as a torch.export program (.pt2): one image "
        "uint8 [1, C, S, S] in, (label, exit, confidence) out, the exit decisions as torch.cond. Load it with "
        "torch.export.load(FILE).module(); see docs/use.md."))  # fmt: skip
    _policy_args(p)
    p.add_argument("-o", "--output", default=None, help="the file to write (default: <method>_<budget>[_compiled].pt2 here)")
    p.add_argument("--compiled", action="store_true", help=(
        "write instead a package of AOTInductor-compiled segments, one per exit, each with the policy's decision (CPU, "
        "batch 1; ~10-20 s per exit to compile; faster than the runtime): see docs/use.md"))  # fmt: skip

    p = sub.add_parser("stats", help="the README's Markdown table of a stats.csv", description="Print the Markdown table of a stats.csv.")
    p.add_argument("stats", metavar="STATS_CSV", help="results/<bench>/stats.csv")

    sub.add_parser("lineage", help="the artifacts behind a file, stale ones flagged", add_help=False)
    return ap


def _predict(args: argparse.Namespace) -> int:
    import torch

    from eenet.io import write_csv
    from eenet.predict import PREDICT_FIELDS, Predictor
    from eenet.training.inference import pick_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {args.device}: no CUDA device here (use cpu)")
    if args.compiled:
        from eenet.compiled import compiled_predictions

        if device.type != "cpu" or args.batch_size != 1:
            raise ValueError("--compiled runs one image at a time on the CPU: leave out --device and --batch-size")
        names, out = compiled_predictions(args.results, args.method, args.budget, args.compiled, args.inputs)
        rows = out.rows(names)
    else:
        pred = Predictor.from_results(args.results, args.method, args.budget, device, args.batch_size)
        names, samples = pred.read(args.inputs)
        rows = pred(samples).rows(names)
    if args.output == "-":
        writer = csv.DictWriter(sys.stdout, fieldnames=PREDICT_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        write_csv(args.output, rows, PREDICT_FIELDS)
        print(f"wrote {args.output}: {len(rows)} predictions", file=sys.stderr)
    return 0


def _export(args: argparse.Namespace) -> int:
    from eenet.export import export_results

    if args.compiled:
        from eenet.compiled import compile_results

        out = args.output or f"{args.method}_{args.budget}_compiled.pt2"
        path = compile_results(args.results, args.method, args.budget, out)
        print(
            f"wrote {path}: load it with eenet.compiled.CompiledPolicy.load({str(path)!r}) or PyTorch alone (docs/use.md)", file=sys.stderr
        )
        return 0
    out = args.output or f"{args.method}_{args.budget}.pt2"
    path = export_results(args.results, args.method, args.budget, out)
    print(f"wrote {path}: load it with torch.export.load({str(path)!r}).module() (docs/use.md)", file=sys.stderr)
    return 0


def _stats(args: argparse.Namespace) -> int:
    from eenet.analysis.stats import markdown_table
    from eenet.io import read_csv

    if not Path(args.stats).is_file():
        raise FileNotFoundError(f"{args.stats}: no such file (results/<bench>/stats.csv, made by the workflow)")
    print(markdown_table(read_csv(args.stats)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "lineage":  # its own parser, help and exit status
        from eenet.pipeline.lineage import main as lineage_main

        return lineage_main(argv[1:], prog="eenet lineage")
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)  # the package's warnings (e.g. a policy without a model checksum)
    handler.setFormatter(logging.Formatter(f"eenet {args.command}: warning: %(message)s"))
    log = logging.getLogger("eenet")
    log.addHandler(handler)
    run = {"predict": _predict, "export": _export, "stats": _stats}[args.command]
    try:
        return run(args)
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
        print(f"eenet {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `eenet predict ... | head`: the reader is gone, nothing more to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (Python's recipe: no second error when stdout is flushed at exit)
        return 0
    finally:
        log.removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
