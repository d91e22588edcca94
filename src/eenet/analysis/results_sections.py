"""The sections of docs/results.md about one benchmark, each written from the run's kept CSVs (stats.csv, summary.csv,
and where kept cost.csv and runtime.csv): :func:`bench_section`. Templates filled from the data; every number is a
CSV's. :mod:`eenet.analysis.results_doc` assembles the document."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from eenet.analysis.stats import AHEAD_LEVEL, markdown_table

__all__ = [
    "Rows", "Run", "has", "plural", "pct", "pts", "ms", "times", "span", "is_bound", "interval", "comparisons", "holm_known",
    "none_survive", "survivors", "uncorrected", "by_budget", "bench_section",
]  # fmt: skip

Rows = list[dict[str, str]]


@dataclass
class Run:
    """One benchmark run's kept CSVs (``benchmarks/out/<prefix>_<kind>.csv``): rows as read, ``[]`` where not kept."""

    prefix: str
    stats: Rows = field(default_factory=list)
    summary: Rows = field(default_factory=list)
    cost: Rows = field(default_factory=list)
    runtime: Rows = field(default_factory=list)

    @property
    def bench(self) -> str:
        """The benchmark's name as its stats.csv writes it (the file prefix when there is none)."""
        return self.stats[0]["bench"] if self.stats else self.prefix

    @property
    def seeds(self) -> list[str]:
        """The training seeds of the run (stats.csv's ``seed`` labels, ``mean`` left out)."""
        return sorted({r["seed"] for r in self.stats} - {"mean"})

    def use(self, rows: Rows) -> Rows:
        """The rows that speak for the run: those over seeds (``seed = mean``) where there are any, else all."""
        mean = [r for r in rows if r.get("seed") == "mean"]
        return mean if len(self.seeds) > 1 and mean else rows

    def per_seed(self, rows: Rows) -> Rows:
        """Each seed's own rows (``seed != mean``)."""
        return [r for r in rows if r.get("seed") != "mean"]


def has(value: str | None) -> bool:
    """A CSV cell that holds a value."""
    return value not in (None, "", "nan")


def plural(n: int | str, word: str) -> str:
    """``1 seed``, ``3 seeds``: a count and its noun."""
    return f"{n} {word}{'' if int(n) == 1 else 's'}"


def pct(x: str | float) -> str:
    """A share as a percentage with 2 decimals."""
    return f"{100 * float(x):.2f}"


def pts(x: str | float) -> str:
    """A difference of shares in points, signed."""
    return f"{100 * float(x):+.2f}"


def ms(x: str | float) -> str:
    """Milliseconds, 3 decimals."""
    return f"{float(x):.3f}"


def times(x: str | float) -> str:
    """A speed-up factor."""
    return f"×{float(x):.2f}"


def span(values: Iterable[str | float], fmt: Callable[[str | float], str]) -> str:
    """``lo–hi`` of the values as ``fmt`` writes them (one value when they agree; ``n/a`` for none)."""
    v = sorted(float(x) for x in values)
    if not v:
        return "n/a"
    lo, hi = fmt(v[0]), fmt(v[-1])
    return lo if lo == hi else f"{lo}–{hi}"


def is_bound(method: str) -> bool:
    """The oracle, alone or composed with a combiner: it reads the labels, a bound rather than a policy."""
    return method.split("+")[-1] == "oracle"


def interval(r: dict[str, str], prefix: str = "vs_maxpred") -> str:
    """A row's advantage with its 95 % interval, in points (the two-level interval over seeds where the row has one)."""
    two_level = {"vs_maxpred": ("seed_ci_low", "seed_ci_high"), "vs_frontier": ("vs_frontier_seed_ci_low", "vs_frontier_seed_ci_high")}
    lo, hi = two_level[prefix] if prefix in two_level and has(r.get(two_level[prefix][0])) else (f"{prefix}_ci_low", f"{prefix}_ci_high")
    return f"{pts(r[prefix])} [{pts(r[lo])}, {pts(r[hi])}]"


def comparisons(run: Run) -> Rows:
    """The rows of the run's stats.csv that compare a policy with MaxPred at a budget (the family of the correction)."""
    return [r for r in run.use(run.stats) if r["budget_value"] != "all" and has(r.get("vs_maxpred"))]


def holm_known(run: Run) -> bool:
    """Whether the kept stats.csv carries the Holm-adjusted p-values (files written before the correction do not)."""
    return any(has(r.get("p_holm")) for r in comparisons(run))


def none_survive(run: Run) -> bool:
    """Whether a kept stats.csv without Holm-adjusted p-values still says that nothing survives the correction: one
    seed (its intervals are the ones the p-values come from) and no interval above 0. A 95 % percentile interval that
    reaches 0 leaves at least 2.5 % of the replicates on each side of 0, so the two-sided bootstrap p-value is at least
    0.05, and Holm's adjustment only raises it."""
    return not holm_known(run) and len(run.seeds) == 1 and not uncorrected(run)


def survivors(run: Run) -> Rows:
    """The comparisons ahead of MaxPred after the Holm correction (``ahead``), bounds left out."""
    return [r for r in comparisons(run) if r.get("ahead") == "True" and not is_bound(r["method"])]


def _low(r: dict[str, str]) -> float:
    """The lower end of a comparison's interval (two-level where the row has it)."""
    return float(r["seed_ci_low"] if has(r.get("seed_ci_low")) else r["vs_maxpred_ci_low"])


def uncorrected(run: Run) -> Rows:
    """The comparisons whose 95 % interval lies above 0, each on its own (no correction), bounds left out."""
    return [r for r in comparisons(run) if _low(r) > 0 and not is_bound(r["method"])]


def against_frontier(r: dict[str, str]) -> int:
    """A row's verdict against the plain-network frontier after Holm: 1 ahead, -1 behind (``vs_frontier_p_holm`` < 0.05
    and the advantage's sign), 0 neither."""
    if float(r["vs_frontier_p_holm"]) >= 0.05:
        return 0
    return (float(r["vs_frontier"]) > 0) - (float(r["vs_frontier"]) < 0)


def by_budget(rows: Rows, key: str = "vs_maxpred") -> str:
    """``policy (b1, b2), ...`` of comparison rows, policies in order of their largest advantage (column ``key``)."""
    found: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        found.setdefault(r["method"], []).append(r)
    order = sorted(found, key=lambda m: (-max(float(r[key]) for r in found[m]), m))
    return ", ".join(
        f"`{m}` ({', '.join(r['budget_value'] for r in sorted(found[m], key=lambda r: float(r['budget_value'])))})" for m in order
    )


def statics(rows: Rows) -> Rows:
    """The single-exit rows (``static_exit<k>``) in exit order."""
    return sorted((r for r in rows if r["method"].startswith("static_exit")), key=lambda r: int(r["method"].removeprefix("static_exit")))


def _machine(run: Run) -> str:
    """Where the run was measured, from the CSV columns that say so; what they do not record, said."""
    devices = sorted({r["device"] for r in run.summary + run.cost + run.runtime if has(r.get("device"))})
    text = f"Device: {' and '.join(devices)}" if devices else "Device: not recorded"
    torch = sorted({r["torch_version"] for r in run.cost + run.runtime if has(r.get("torch_version"))})
    text += f"; torch {' and '.join(torch)}" if torch else ""
    if run.cost:
        c = run.cost[0]
        text += f"; costs timed with {plural(c['threads'], 'thread')} at batch {c['batch_size']}"
        text += f", over {c['samples']} samples, {c['repeats']} repeats"
    return text + f". Not recorded in the kept CSVs: the date{'' if torch else ', the torch version'}."


def _exits(run: Run) -> list[str]:
    """Bullets: accuracy and cost per exit, the plain network, budget compliance."""
    mean, seeds = statics(run.use(run.summary)), statics(run.per_seed(run.summary))
    if not mean:
        return []
    n_test = next(sum(json.loads(r["exit_histogram"])) for r in mean + seeds if has(r.get("exit_histogram")))
    several = len(run.seeds) > 1
    per = {r["method"]: [s for s in seeds if s["method"] == r["method"]] for r in mean}
    spread = {r["method"]: f" ({span((s['test_accuracy'] for s in per[r['method']]), pct)})" if several else "" for r in mean}
    acc = " / ".join(pct(r["test_accuracy"]) + spread[r["method"]] for r in mean)
    cost = " / ".join(span((s["test_cost_ms"] for s in per[r["method"]]), ms) for r in mean)
    last, last_acc = float(mean[-1]["test_cost_ms"]), pct(mean[-1]["test_accuracy"])
    over = "mean over seeds (lowest–highest seed)" if several else "one seed"
    out = [
        f"- {plural(len(run.seeds), 'training seed')} ({', '.join(run.seeds)}), {n_test:,} test samples. "
        f"Test accuracy per exit, {over}: **{acc} %**.",
        f"- Cost to reach each exit and decide there (ms per sample{', range over seeds' if several else ''}): **{cost} ms**; "
        f"the first exit costs {100 * float(mean[0]['test_cost_ms']) / last:.0f} % of the last.",
    ]
    plain = [float(r["plain_ms"]) for r in run.use(run.summary) if has(r.get("plain_ms"))]
    if run.cost and has(run.cost[0].get("plain_ms")):
        c = run.cost[0]
        out.append(
            f"- The plain network (every stage, the last head only: no early exit; cost.csv) costs **{ms(c['plain_ms'])} ms** "
            f"({float(c['plain_flops']) / 1e6:.1f} MFLOPs), {float(c['plain_ms']) / last:.2f} of the last exit's cost, "
            f"with the last exit's accuracy ({last_acc} %)."
        )
    elif plain:
        # against the last exit timed by the same runtime job (cost.csv's job ran at another time, on another clock)
        lasts = [r for r in run.use(run.summary) if r["method"] == mean[-1]["method"] and has(r.get("measured_ms"))]
        share = f"{plain[0] / last:.2f} of the last exit's cost"
        if lasts:
            share = f"{plain[0] / float(lasts[0]['measured_ms']):.2f} of the last exit's time in the same job"
        out.append(
            f"- The plain network (every stage, the last head only), timed by the runtime at batch 1: **{ms(plain[0])} ms**, "
            f"{share}, with the last exit's accuracy ({last_acc} %)."
        )
    pol = [r for r in run.use(run.summary) if has(r.get("cost_ratio")) and not is_bound(r["method"]) and r.get("infeasible") != "True"]
    off = [r for r in pol if r.get("within_tolerance") == "False"]
    if pol:
        ratio = span((r["cost_ratio"] for r in pol), lambda x: f"{float(x):.3f}")
        out.append(
            "- Budgets are fractions of the last exit's cost. Realised test cost ÷ budget, every policy and budget: "
            f"{ratio}; {len(off)} of {len(pol)} outside the tolerance."
        )
    return out


def _best_other(at: dict[tuple[str, str], dict[str, str]], budget: str, named: list[str]) -> str:
    """The most accurate policy at ``budget`` other than the ``named`` ones and the bounds, with how many tie with it."""
    others = [r for (m, b), r in at.items() if b == budget and m not in named and not is_bound(m)]
    if not others:
        return ""
    best = max(float(r["test_accuracy"]) for r in others)
    tops = sorted(r["method"] for r in others if float(r["test_accuracy"]) == best)
    return f"`{tops[0]}`" + (f" (+{len(tops) - 1} tied)" if len(tops) > 1 else "") + f" {pct(best)}"


def _accuracy_table(run: Run) -> list[str]:
    """Accuracy per budget: MaxPred, EENet, the best other policy, the oracle; MaxPred's measured latency and speed-up."""
    rows = [r for r in run.use(run.summary) if has(r.get("budget_value")) and has(r.get("test_accuracy"))]
    budgets = sorted({r["budget_value"] for r in rows}, key=float)
    at = {(r["method"], r["budget_value"]): r for r in rows}
    named = [m for m in ("maxpred", "eenet", "oracle") if any(k[0] == m for k in at)]
    keys = ("speedup_vs_plain_test", "speedup_vs_plain", "speedup_vs_full")
    speed = next((k for k in keys if any(has(r.get(k)) for r in rows)), None)
    over = "over `model(x)` (every head)" if speed == "speedup_vs_full" else "over the plain network"
    head = ["budget", "budget (ms)", *(f"`{m}`" for m in named[:2]), "best other policy", *(f"`{m}`" for m in named[2:])]
    head += ["MaxPred measured (ms)", f"MaxPred speed-up {over}"] if speed else []
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]

    def acc(m: str, b: str) -> str:
        return pct(at[m, b]["test_accuracy"]) if (m, b) in at else ""

    for b in budgets:
        cells = [b, ms(at[named[0], b]["budget_ms"]), *(acc(m, b) for m in named[:2]), _best_other(at, b, named)]
        cells += [acc(m, b) for m in named[2:]]
        if speed:
            mp = at.get(("maxpred", b), {})
            cells += [ms(mp["measured_ms"]) if has(mp.get("measured_ms")) else "", times(mp[speed]) if has(mp.get(speed)) else ""]
        lines.append("| " + " | ".join(cells) + " |")
    text = f"Test accuracy (%{'; mean over seeds' if len(run.seeds) > 1 else ''}; summary.csv)."
    if speed:
        quoted = " for the whole test set" if speed == "speedup_vs_plain_test" else ""
        text += f" MaxPred measured: the adaptive runtime at batch 1 on the timed test samples; its speed-up quoted{quoted or ' on them'}."
    return [*lines, "", text]


def _high(r: dict[str, str]) -> float:
    """The upper end of a comparison's interval (two-level where the row has it)."""
    return float(r["seed_ci_high"] if has(r.get("seed_ci_high")) else r["vs_maxpred_ci_high"])


def _statistics(run: Run) -> list[str]:
    """What the comparisons with MaxPred say (after Holm where the CSV has it), then the table of stats.csv."""
    comp = comparisons(run)
    if not comp:
        return []
    up, low = uncorrected(run), [r for r in comp if _high(r) < 0]
    if holm_known(run):
        ahead = survivors(run)
        text = f"**After the Holm correction over its {len(comp)} comparisons with MaxPred** (every policy and budget, the oracle "
        text += f"included; p < {AHEAD_LEVEL:g}): " + (
            f"ahead of MaxPred: {by_budget(ahead)}." if ahead else "**no policy is ahead of MaxPred**."
        )
        gone = [
            f"`{r['method']}` at {r['budget_value']} ({interval(r)}, Holm p {float(r['p_holm']):.3f})"
            for r in up
            if r.get("ahead") != "True"
        ]
        text += f" An interval above 0 on its own, but not after the correction: {'; '.join(gone)}." if gone else ""
    elif none_survive(run):
        text = (
            f"**The kept stats.csv predates the multiple-comparison correction** (no `p_holm` column), but no policy can be ahead "
            f"of MaxPred after it: none of its {len(comp)} intervals lies above 0 even on its own (an interval reaching 0 means "
            "a p-value of at least 0.05, and the correction only raises p-values)."
        )
    else:
        text = (
            f"**The kept stats.csv predates the multiple-comparison correction** (no `p_holm` column): which of its {len(comp)} "
            "comparisons with MaxPred survive the correction is not known from it; the run must be redone to get it. "
            f"Uncorrected (each 95 % interval on its own), {len(up)} of them lie above 0" + (f": {by_budget(up)}." if up else ".")
        )
    if len(run.seeds) > 1 and not any(has(r.get("seed_ci_low")) for r in comp):
        text += " The intervals resample the test samples only (this stats.csv has no interval over seeds, `seed_ci_*`)."
    text += f" Below MaxPred with the interval below 0: {len(low)} of {len(comp)}."
    same = sorted(m for m in {r["method"] for r in comp} if all(float(r["vs_maxpred"]) == 0 for r in comp if r["method"] == m))
    text += f" Same test accuracy as MaxPred at every budget: {', '.join(f'`{m}`' for m in same)}." if same else ""
    unit = "seeds' mean; " if len(run.seeds) > 1 else ""
    head = (
        f"Advantage over MaxPred (points, {unit}95 % interval), AUC (mean accuracy over the budget range, %) and mean gap to the "
        f"oracle (points), from `benchmarks/out/{run.prefix}_stats.csv`:"
    )
    return [text, "", head, "", markdown_table(run.stats)]


def _runtime(run: Run) -> list[str]:
    """The adaptive runtime at batch 1 as summary.csv carries it: speed-ups and measured ÷ simulated."""
    rows = [r for r in run.per_seed(run.summary) if has(r.get("measured_vs_simulated")) and not r["method"].startswith("static_exit")]
    if not rows:
        return []
    n = span((r["measured_samples"] for r in rows), lambda x: f"{int(float(x)):,}")
    ratio = span((r["measured_vs_simulated"] for r in rows), lambda x: f"{float(x):.2f}")
    each = len(run.seeds) > 1
    text = f"The adaptive runtime at batch 1 ({n} test samples timed{', each seed' if each else ''}): measured ÷ simulated {ratio} "
    text += f"over {len(rows)} policy-budget runs"
    key = "speedup_vs_plain" if any(has(r.get("speedup_vs_plain")) for r in rows) else "speedup_vs_full"
    mp = [r for r in rows if r["method"] == "maxpred" and has(r.get(key))]
    if mp:
        budgets = sorted({r["budget_value"] for r in mp}, key=float)
        faster = [b for b in budgets if all(float(r[key]) > 1 for r in mp if r["budget_value"] == b)]
        what = "the plain network" if key == "speedup_vs_plain" else "`model(x)` (every head; the plain network was not timed in this run)"
        text += f"; MaxPred {span((r[key] for r in mp), times)} over {what}, faster{' in every seed' if each else ''} at budgets "
        text += ", ".join(faster) or "none"
    return [text + "."]


def bench_section(run: Run, heading: str, commands: Sequence[str]) -> list[str]:
    """The lines of a benchmark's section: heading, commands, machine, exits, accuracy per budget, statistics, runtime."""
    lines = [heading, ""]
    if commands:
        lines += ["```bash", *commands, "```", ""]
    if not run.stats or not run.summary:
        return lines + [f"No kept CSVs: `benchmarks/out/{run.prefix}_stats.csv` and `_summary.csv` are needed.", ""]
    kept = ", ".join(f"`{run.prefix}_{k}.csv`" for k in ("stats", "summary", "cost", "runtime") if getattr(run, k))
    lines += [f"From `benchmarks/out/`: {kept}. {_machine(run)}", "", *_exits(run), "", *_accuracy_table(run), ""]
    lines += [*_statistics(run), ""]
    rt = [] if run.runtime else _runtime(run)  # a kept runtime.csv has a section of its own
    return lines + ([*rt, ""] if rt else [])
