"""HTML tables for the Snakemake report: summary.csv, stats.csv and the combiners that lower an exit's validation
accuracy, as a page the report shows inline (rule ``report_tables``: :func:`bench_tables_html`)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

__all__ = ["tables_html", "combiner_loss_rows", "bench_tables_html", "COMBINER_LOSS_FIELDS"]

COMBINER_LOSS_FIELDS = ["run", "policy", "combiner", "exits", "points_lost", "budgets"]
"""Columns of the combiner-loss table: the run (``results/<run>``), the combined policy, its combiner, the exits whose
validation accuracy the combiner lowers below the exit's own softmax, the points lost at each (percentage points, in
the same order), and the budgets whose fitted files say so."""

_STYLE = (
    "body{font-family:sans-serif;font-size:12px;margin:8px}table{border-collapse:collapse;margin-bottom:18px}"
    "th,td{border:1px solid #ccc;padding:2px 6px;text-align:right;white-space:nowrap}th{background:#eee;position:sticky;top:0}"
    "td:nth-child(-n+3){text-align:left}"
)


def _cell(value: str) -> str:
    """A number shown with 4 decimals, anything else as it is (escaped)."""
    try:
        f = float(value)
    except ValueError:
        return html.escape(value)
    return html.escape(value) if f.is_integer() and "." not in value else f"{f:.4f}"


def tables_html(title: str, tables: list[tuple[str, str, list[dict[str, str]]]]) -> str:
    """A self-contained HTML page: per ``(heading, note, rows)`` a heading, a note and the rows (CSV dicts) as a table
    whose columns are those of the first row; columns empty in every row are left out."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"]
    parts.append(f"<h2>{html.escape(title)}</h2>")
    for heading, note, rows in tables:
        parts.append(f"<h3>{html.escape(heading)}</h3><p>{html.escape(note)}</p>")
        if not rows:
            parts.append("<p>(no rows)</p>")
            continue
        cols = [c for c in rows[0] if any(r.get(c, "") != "" for r in rows)]
        parts.append("<table><thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr></thead><tbody>")
        for r in rows:
            parts.append("<tr>" + "".join(f"<td>{_cell(str(r.get(c, '')))}</td>" for c in cols) + "</tr>")
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _run_of(path: str) -> str:
    """``.../results/<run>/schedulers/<method>/<budget>.json`` -> ``<run>`` (without ``results/``: the folder above
    ``schedulers``)."""
    above = PurePath(path).parts[:-3]
    start = max((i + 1 for i, part in enumerate(above) if part == "results"), default=0)
    return str(PurePath(*above[start:]))


def combiner_loss_rows(fitted: Mapping[str, Mapping[str, Any]]) -> list[dict[str, str]]:
    """One row (:data:`COMBINER_LOSS_FIELDS`) per combined policy of a run whose combiner lowers an exit's validation
    accuracy below the exit's own: ``fitted`` maps each fitted-policy file (``results/<run>/schedulers/<method>/<budget>.json``)
    to its record, whose ``combiner_losses`` (``[K]``, fractions) :func:`eenet.schedulers.compose.fit_budgets` computed
    with :func:`~eenet.schedulers.compose.combiner_losses` when it fitted the combiner. A policy with no loss, an
    infeasible budget and a file written before the losses were recorded give no row."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path, record in fitted.items():
        losses, comb = record.get("combiner_losses"), record.get("combiner")
        if not losses or not isinstance(comb, dict):
            continue
        key = (_run_of(path), str(record["method"]))
        row = found.setdefault(key, {"losses": [float(d) for d in losses], "combiner": str(comb.get("name")), "budgets": []})
        row["budgets"].append(str(record.get("budget_value", PurePath(path).stem)))
    rows = []
    for (run, method), f in sorted(found.items()):
        worse = [(k, d) for k, d in enumerate(f["losses"]) if d > 0]
        if worse:
            rows.append({
                "run": run, "policy": method, "combiner": f["combiner"], "exits": ", ".join(str(k) for k, _ in worse),
                "points_lost": ", ".join(f"{100 * d:.2f}" for _, d in worse), "budgets": ", ".join(f["budgets"]),
            })  # fmt: skip
    return rows


def bench_tables_html(
    bench: str, stats: list[dict[str, str]], summary: list[dict[str, str]], fitted: Mapping[str, Mapping[str, Any]]
) -> str:
    """The page of ``results/<bench>/tables.html``: the combined policies that lower an exit's validation accuracy
    (:func:`combiner_loss_rows` of the ``fitted`` records), stats.csv's and summary.csv's rows (CSV dicts)."""
    losses = combiner_loss_rows(fitted)
    loss_note = (
        "Combined policies (<combiner>+<method>) whose combiner lowers an exit's validation accuracy below the exit's own "
        "softmax: the exits and the percentage points lost there (computed when the combiner was fitted; "
        "fit_budgets logs the same). "
        + ("None of the combined policies does." if not losses else "The policy's decisions at those exits read the worse outputs.")
    )
    return tables_html(
        f"{bench}: statistics and summary",
        [
            ("Combiners that lower an exit's accuracy", loss_note, losses),
            ("stats.csv", "Per policy and budget: accuracy, advantage over MaxPred with its paired bootstrap 95 % interval, gap to "
             "the oracle, cost / budget, validation accuracy and val_minus_test (validation minus test accuracy: what the fit "
             "promised beyond what test gave); per policy (budget_value = all): mean accuracy over the budget range (auc), "
             "mean gap to the oracle, share of budgets exceeded, mean val_minus_test.", stats),
            ("summary.csv", "Every policy at every budget and every single exit: test accuracy and realised cost (simulated and "
             "measured), validation accuracy and cost, exit histogram.", summary),
        ],
    )  # fmt: skip
