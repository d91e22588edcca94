"""The reliability section of docs/results.md: how often each policy breaks its budget (and, under a guarantee on
accuracy loss, its ``ε``) on data it was not fitted on, guaranteed and plain side by side, from the kept rows of
reliability.csv (``benchmarks/out/<run>_reliability.csv``, ``<run>_reliability_accuracy_loss.csv``; made by
``benchmarks/reliability_study.py`` or rule ``reliability``). Templates filled from the CSVs;
:mod:`eenet.analysis.results_doc` assembles the document."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from eenet.analysis.results_sections import Rows, has, plural

__all__ = ["RELIABILITY_COMMANDS", "reliability_section"]

RELIABILITY_COMMANDS = (
    "python benchmarks/reliability_study.py --run {run}",
    "python benchmarks/reliability_study.py --run {run} --accuracy-loss {epsilon}",
)
"""What makes the two kept CSVs of a run (``{run}``: the run, ``{epsilon}``: the accuracy-loss study's ``ε``, read from
its ``guarantee`` column)."""


def _p(x: str | None, nd: int = 1) -> str:
    """A share as a percentage, ``nd`` decimals; empty for an empty cell."""
    return f"{100 * float(x):.{nd}f}" if has(x) else ""


def _points(x: str | float) -> str:
    """A share as signed points, 2 decimals, ``+0.00`` for a rounding error below 0 (never ``-0.00``)."""
    return f"{round(100 * float(x), 2) + 0.0:+.2f}"


def _rate(r: dict[str, str] | None, key: str = "violation") -> str:
    """``rate (low–high)`` in %, with the Wilson interval; ``infeasible`` when no re-split was fitted."""
    if r is None:
        return ""
    if not has(r.get(f"{key}_rate")):
        return "infeasible" if has(r.get("fitted")) and int(r["fitted"]) == 0 else ""
    return f"{_p(r[f'{key}_rate'])} ({_p(r[f'{key}_ci_low'])}–{_p(r[f'{key}_ci_high'])})"


def _acc(r: dict[str, str] | None) -> str:
    if r is None or not has(r.get("accuracy_mean")):
        return ""
    return f"{_p(r['accuracy_mean'], 2)} ± {_p(r['accuracy_std'], 2)}"


def _fitted(r: dict[str, str] | None) -> str:
    return "" if r is None else f"{r['fitted']}/{r['resplits']}"


def _pairs(rows: Rows) -> Iterator[tuple[str, str, dict[str, str] | None, dict[str, str] | None]]:
    """``(policy, budget, plain row, guaranteed row)`` wherever one of the two rows exists (the other ``None``): the
    plain policies with a guaranteed variant first, then the others, alone before combined; budgets in order."""
    at = {(r["method"], r["budget_value"]): r for r in rows}
    methods = {r["method"] for r in rows}
    plain = sorted({m for m in methods if not m.endswith("_guard")} | {m.removesuffix("_guard") for m in methods if m.endswith("_guard")},
                   key=lambda m: (f"{m}_guard" not in methods, "+" in m, m))  # fmt: skip
    budgets = sorted({r["budget_value"] for r in rows}, key=float)
    for m in plain:
        for v in budgets:
            p, g = at.get((m, v)), at.get((f"{m}_guard", v))
            if p is not None or g is not None:
                yield m, v, p, g


def _guarantee(rows: Rows) -> str:
    return next((r["guarantee"] for r in rows if has(r.get("guarantee"))), "")


def _cost_table(rows: Rows) -> list[str]:
    lines = [
        "| policy | budget | fitted re-splits, plain; guaranteed | over budget, plain (%) | over budget, guaranteed (%) "
        "| accuracy, plain (%) | accuracy, guaranteed (%) | accuracy price (points) | mean accuracy loss, plain / guaranteed (%) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m, v, p, g in _pairs(rows):
        price = _points(g["accuracy_price"]) if g is not None and has(g.get("accuracy_price")) else ""
        loss = " / ".join(_p(r.get("loss_mean"), 2) for r in (p, g) if r is not None)
        fitted = "; ".join(_fitted(r) for r in (p, g) if r is not None)
        lines.append(f"| `{m}` | {v} | {fitted} | {_rate(p)} | {_rate(g) if g is not None else 'no variant'} | {_acc(p)} | "
                     f"{_acc(g)} | {price} | {loss} |")  # fmt: skip
    return lines


def _loss_table(rows: Rows) -> list[str]:
    lines = [
        "| policy | budget | re-splits fitted, guaranteed | loss over ε, plain (%) | loss over ε, guaranteed (%) | mean accuracy loss, "
        "plain / guaranteed (%) | over budget, plain / guaranteed (%) | accuracy, plain / guaranteed (%) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m, v, p, g in _pairs(rows):
        if p is None or g is None:
            continue
        both = (p, g)
        lines.append(f"| `{m}` | {v} | {_fitted(g)} | {_rate(p, 'loss_violation')} | {_rate(g, 'loss_violation')} | "
                     f"{' / '.join(_p(r.get('loss_mean'), 2) or '–' for r in both)} | "
                     f"{' / '.join(_p(r.get('violation_rate')) or '–' for r in both)} | "
                     f"{' / '.join(_p(r.get('accuracy_mean'), 2) or '–' for r in both)} |")  # fmt: skip
    return lines


def _span(values: Sequence[float]) -> str:
    """``lo–hi`` of shares in whole %, one number when they round alike, ``–`` when there are none."""
    if not values:
        return "–"
    lo, hi = min(values), max(values)
    return f"{100 * lo:.0f}" if f"{100 * lo:.0f}" == f"{100 * hi:.0f}" else f"{100 * lo:.0f}–{100 * hi:.0f}"


def _cost_findings(rows: Rows) -> list[str]:
    fitted = [r for r in rows if has(r.get("violation_rate"))]
    plain = [r for r in fitted if not r["method"].endswith("_guard")]
    guard = [r for r in fitted if r["method"].endswith("_guard")]
    out = []
    if plain:
        many = [r for r in plain if int(r["fitted"]) >= 100]
        few = sorted({r["method"] for r in plain if int(r["fitted"]) < 100})
        if many:
            out.append(f"- The plain policies fitted on 100 or more re-splits exceed the budget on the evaluation part in "
                       f"**{_span([float(r['violation_rate']) for r in many])} %** of them, per policy and budget "
                       f"({len(many)} policy-budget pairs; 95th percentile of the excess up to "
                       f"{max(100 * float(r['excess_p95']) for r in many):.2f} %).")  # fmt: skip
        if few:
            n = sorted({r["resplits"] for r in plain if r["method"] in few})
            out.append(f"- {', '.join(f'`{m}`' for m in few)}: {' or '.join(n)} re-splits only (an EENet fit takes seconds), "
                       "too few for a rate; listed for completeness.")  # fmt: skip
    if guard:
        over = sum(round(float(r["violation_rate"]) * int(r["fitted"])) for r in guard)
        total = sum(int(r["fitted"]) for r in guard)
        prices = [float(r["accuracy_price"]) for r in guard if has(r.get("accuracy_price"))]
        worst = max(guard, key=lambda r: (float(r["violation_rate"]), r["method"]))
        line = (f"- The guaranteed variants ({_guarantee(rows)}) exceed it in **{_span([float(r['violation_rate']) for r in guard])} %** "
                f"of the re-splits ({over} of {total:,} fits; highest upper Wilson bound {_p(worst['violation_ci_high'])} %, "
                f"`{worst['method']}` at {worst['budget_value']})")  # fmt: skip
        if prices:
            line += f", for an accuracy price of **{_points(min(prices))} to {_points(max(prices))} points**"
        out.append(line + ".")
        combined = [r for r in guard if "+" in r["method"]]
        if combined:
            names = sorted({r["method"] for r in combined})
            bases = {m.removesuffix("_guard") for m in names}
            out.append(f"- The guaranteed compositions ({', '.join(f'`{m}`' for m in names)}): over budget in "
                       f"{_span([float(r['violation_rate']) for r in combined])} % of the re-splits; their plain compositions in "
                       f"{_span([float(r['violation_rate']) for r in plain if r['method'] in bases])} %.")  # fmt: skip
    return out


def _loss_findings(rows: Rows) -> list[str]:
    guard = [r for r in rows if r["method"].endswith("_guard")]
    fit = [r for r in guard if has(r.get("loss_violation_rate"))]
    never = {(r["method"].removesuffix("_guard"), r["budget_value"]) for r in guard if int(r["fitted"]) == 0}
    there = [
        float(r["loss_violation_rate"]) for r in rows if (r["method"], r["budget_value"]) in never and has(r.get("loss_violation_rate"))
    ]
    out = []
    if fit:
        out.append(f"- Where fitted, the guaranteed variants lose against the last exit on more than ε of the evaluation samples in "
                   f"**{_span([float(r['loss_violation_rate']) for r in fit])} %** of the re-splits "
                   f"({len(fit)} policy-budget pairs fitted on at least one re-split).")  # fmt: skip
    partly = [r for r in fit if int(r["fitted"]) < int(r["resplits"])]
    if partly:
        out.append(f"- Fitted on some re-splits only at {len(partly)} pairs ("
                   + ", ".join(f"`{r['method']}` at {r['budget_value']}: {r['fitted']} of {r['resplits']}" for r in partly)
                   + "): there the cheapest certified setting costs about the budget.")  # fmt: skip
    if never:
        out.append(f"- Infeasible on every re-split at {len(never)} of {len(guard)} policy-budget pairs (the budget is below the cost "
                   "of the cheapest setting certified for ε): the guarantee refuses the budget"
                   + (f"; the plain policies there lose more than ε in {_span(there)} % of the re-splits." if there else "."))  # fmt: skip
    return out


def _epsilon(rows: Rows) -> str:
    """The ``ε`` of the accuracy-loss study, from its ``guarantee`` column (``accuracy_loss (disagree), ε 0.03, δ 0.05``)."""
    found = re.search(r"ε ([0-9.e+-]+)", _guarantee(rows))
    return found.group(1) if found else "EPS"


def reliability_section(kept: dict[str, tuple[Rows, Rows]], missing_note: dict[str, str]) -> list[str]:
    """The section: for each run (``kept``: run prefix -> (rows of ``<run>_reliability.csv``, of
    ``<run>_reliability_accuracy_loss.csv``), ``[]`` where not kept), its cost table and its accuracy-loss table;
    ``missing_note``: run prefix -> why it has no kept study (said where a run has none)."""
    lines = ["## How often a budget breaks on unseen data: the re-split study", ""]
    commands = []
    for cost, loss in kept.values():
        if cost:
            commands.append(RELIABILITY_COMMANDS[0].format(run=cost[0]["bench"]))
        if loss:
            commands.append(RELIABILITY_COMMANDS[1].format(run=loss[0]["bench"], epsilon=_epsilon(loss)))
    if commands:
        lines += ["```bash", *commands, "```", ""]
    lines += [
        "A run's cached validation and test outputs are pooled and cut at random, again and again, into a fit part as large as "
        "validation and an evaluation part (the rest); every policy is fitted on the fit part at every budget and evaluated on "
        "the rest ([guarantees.md](guarantees.md)). *Over budget*: the share of re-splits whose realised cost on the evaluation "
        "part exceeds the budget, with its Wilson 95 % interval in brackets; *accuracy loss*: the share of evaluation samples "
        "whose prediction differs from the last exit's (for a composition, the combined last exit's). A guaranteed variant "
        "(`<m>_guard`, `ztw_ens+<m>_guard`) may break its statement on at most a share δ of the draws of the fitting data.",
        "",
    ]
    for prefix, (cost, loss) in kept.items():
        if not cost and not loss:
            lines += [f"`{prefix}`: no kept study ({missing_note.get(prefix, f'no benchmarks/out/{prefix}_reliability.csv')}).", ""]
            continue
        run = (cost or loss)[0]["bench"]
        lines += [f"### `{run}`", ""]
        if cost:
            resplits = sorted({int(r["resplits"]) for r in cost}, reverse=True)
            slow = sorted({r["method"] for r in cost if int(r["resplits"]) < resplits[0]})
            fewer = (f" ({', '.join(f'`{m}`' for m in slow)}: {' or '.join(str(n) for n in resplits[1:])}, their fits taking seconds)"
                     if slow else "")  # fmt: skip
            lines += [f"From `benchmarks/out/{prefix}_reliability.csv`: {plural(resplits[0], 're-split')}{fewer}; the guaranteed "
                      f"variants under the run's guarantee, {_guarantee(cost) or 'none studied'}.", ""]  # fmt: skip
            lines += _cost_findings(cost) + [""] + _cost_table(cost) + [""]
        if loss:
            lines += [f"From `benchmarks/out/{prefix}_reliability_accuracy_loss.csv`: the guaranteed variants under "
                      f"{_guarantee(loss)} instead, and their plain policies, on the same re-splits. *Loss over ε*: the share of "
                      "re-splits whose accuracy loss on the evaluation part exceeds ε (for a plain policy: how often it would "
                      "break the same statement). The guarantee keeps the validation cost within the budget and no more: "
                      "the realised cost lands on either side of it, as a plain policy's does.", ""]  # fmt: skip
            lines += _loss_findings(loss) + [""] + _loss_table(loss) + [""]
    return lines
