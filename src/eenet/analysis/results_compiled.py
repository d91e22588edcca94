"""The compiled clock of docs/results.md: a many-exit run's policies compiled ahead of time against the compiled plain
network and the compiled frontier (compiled.csv of each seed, kept as ``<run>_compiled.csv``; rule measure_compiled).
:mod:`eenet.analysis.results_doc` assembles the document."""

from __future__ import annotations

from collections import Counter

from eenet.analysis.results_runtime import ratio, seed_of
from eenet.analysis.results_sections import Rows, ms, pct, plural, pts, span, times

__all__ = ["compiled_section"]


def _compiled_frontier(rows: Rows, networks: Rows, seed: str) -> list[tuple[float, float]]:
    """``(compiled ms, test accuracy)`` of one seed's compiled frontier: every cut of its network (compiled.csv) and each
    plain network of a depth trained alone (frontier.csv's ``depth<k>``) at the compiled time of the cut of that depth,
    the same program with other weights (:mod:`eenet.measure.frontier`)."""
    cuts = {int(r["exit"]): r for r in rows if r["kind"] == "cut" and seed_of(r) == seed}
    points = [(float(r["compiled_ms"]), float(r["test_accuracy"])) for r in cuts.values()]
    for r in networks:
        cut = cuts.get(int(r["network"].removeprefix("depth")) - 1) if r["seed"] == seed and r["kind"] == "depth" else None
        if cut is not None:
            points.append((float(cut["compiled_ms"]), float(r["test_accuracy"])))
    return points


def compiled_section(rows: Rows, networks: Rows, prefix: str) -> list[str]:
    """A run on the compiled clock (compiled.csv of each seed, kept as ``<prefix>_compiled.csv``): the policies compiled
    ahead of time against the compiled plain network and the compiled frontier (every cut; the networks of each depth
    trained alone, ``networks``: frontier.csv's rows, at their cut's compiled time), on the whole test set."""
    if not rows:
        return []
    seeds = sorted({seed_of(r) for r in rows}, key=lambda s: int(s) if s.isdigit() else -1)
    pol = [r for r in rows if r["kind"] == "policy"]
    cuts = [r for r in rows if r["kind"] == "cut"]
    last = str(max(int(r["exit"]) for r in cuts))
    plain = {seed_of(r): r for r in cuts if r["exit"] == last}
    lines = [
        "#### On the compiled clock",
        "",
        f"From `benchmarks/out/{prefix}_compiled.csv` (rule measure_compiled; "
        f"`.venv/bin/snakemake --cores 2 {' '.join(f'results/{prefix}/seed{s}/compiled.csv' for s in seeds)}`, then "
        f"`python benchmarks/compiled_clock.py --run {prefix}`): "
        "the policies compiled ahead of time as `eenet export --compiled` compiles them (AOTInductor, one program per exit, "
        "one compile serving every budget), every cut of the network compiled alike (the last cut is the plain network), "
        "timed at batch 1 beside their eager runs in one job per seed, on "
        f"{span([r['samples'] for r in rows], lambda x: f'{float(x):.0f}')} test samples (the runtime's sample), "
        f"{plural(rows[0]['threads'], 'thread')}, {rows[0]['device']}; times are for the whole test set (compiled time x "
        "the whole test set's simulated cost / the sample's).",
        "",
        f"- Compiled over eager, in the same job: policies {span([r['compiled_vs_eager'] for r in pol], ratio)}, cuts "
        f"{span([r['compiled_vs_eager'] for r in cuts], ratio)}. The compiled plain network: "
        f"{span([r['compiled_ms'] for r in plain.values()], ms)} ms (eager {span([r['eager_ms'] for r in plain.values()], ms)} ms).",
        f"- The compiled segments' exits and answers agree with the cached evaluation on {span([r['exits_agree'] for r in pol], pct)} "
        f"/ {span([r['preds_agree'] for r in pol], pct)} % of the timed samples.",
        f"- Compiles: {span([r['compile_s'] for r in pol], lambda x: f'{float(x):.0f}')} s a policy program, "
        f"{len({(r['compiled_with'], seed_of(r)) for r in pol}) // max(len(seeds), 1)} programs a seed for "
        f"{len(pol) // max(len(seeds), 1)} policy-budget pairs.",
        "",
    ]
    frontier = {s: _compiled_frontier(rows, networks, s) for s in seeds}
    at: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    for r in pol:
        at.setdefault((r["method"], r["budget_value"]), {})[seed_of(r)] = r
    lines += [
        "| policy | budget | test accuracy (%) | compiled ms | speed-up over the compiled plain network "
        "| vs the compiled frontier (points) |",
        "|---|---|---|---|---|---|",
    ]
    ahead: Counter[tuple[str, str]] = Counter()  # (policy, seed) -> budgets above the compiled frontier
    near: dict[str, list[tuple[float, str]]] = {s: [] for s in seeds}
    for (method, budget), by_seed in at.items():
        accs = [float(by_seed[s]["test_accuracy"]) for s in seeds if s in by_seed]
        lat = [float(by_seed[s]["test_compiled_ms"]) for s in seeds if s in by_seed]
        speeds, advs = [], []
        for s in seeds:
            r = by_seed.get(s)
            if r is None:
                continue
            speeds.append(times(r["speedup_vs_plain_test"]))
            fast = [a for t, a in frontier[s] if t <= float(r["test_compiled_ms"])]
            adv = float(r["test_accuracy"]) - max(fast) if fast else None
            advs.append(pts(adv) if adv is not None else "·")
            ahead[method, s] += adv is not None and adv > 0
            if s in plain and float(r["test_accuracy"]) >= float(plain[s]["test_accuracy"]) - 0.005:
                near[s].append((float(r["speedup_vs_plain_test"]), f"`{method}` at {budget}"))
        lines.append(f"| `{method}` | {budget} | {pct(sum(accs) / len(accs))} | {ms(sum(lat) / len(lat))} | {' / '.join(speeds)} | "
                     f"{' / '.join(advs)} |")  # fmt: skip
    twice = sorted({m for m, _ in at if all(ahead[m, s] >= 2 for s in seeds)})
    fastest = []
    for s in seeds:
        best = max(near[s]) if near[s] else None
        fastest.append(f"seed {s}: {best[1]}, {times(best[0])}" if best else f"seed {s}: none within 0.5 points")
    lines += [
        "",
        f"Seeds {' / '.join(seeds)}; the frontier: every compiled cut, and each plain network of a depth trained alone at the "
        "compiled time of its cut (the same program, other weights; the network of half the width is not compiled), the best "
        "accuracy at no more than the policy's compiled time (·: none as fast). Point estimates: no interval is computed on "
        "the compiled clock.",
        "",
        f"- Above the compiled frontier at 2 or more budgets in every seed: {', '.join(f'`{m}`' for m in twice) or 'none'}.",
        "- The fastest policy at no more than 0.5 points below the plain network's accuracy, its speed-up over the compiled "
        f"plain network: {'; '.join(fastest)}.",
        "",
    ]
    return lines
