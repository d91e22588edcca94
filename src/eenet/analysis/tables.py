"""HTML tables for the Snakemake report: summary.csv and stats.csv as a page the report shows inline."""

from __future__ import annotations

import html

__all__ = ["tables_html"]

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
