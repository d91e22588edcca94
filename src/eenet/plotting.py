"""The accuracy-vs-cost figure and the summary table of a benchmark."""

from __future__ import annotations

from typing import Any

import torch

from .schedulers import OracleScheduler, StaticScheduler

__all__ = ["static_rows", "oracle_frontier", "plot_curve", "SUMMARY_FIELDS"]

SUMMARY_FIELDS = [
    "bench", "method", "budget_value", "budget_unit", "budget_ms", "test_accuracy", "test_cost_ms", "test_cost_flops",
    "cost_ratio", "within_tolerance", "val_accuracy", "val_cost_ms", "exit_histogram", "infeasible", "note", "device",
]  # fmt: skip

STYLE = {
    "eenet": {"color": "tab:red", "marker": "o", "label": "EENet"},
    "maxpred": {"color": "tab:blue", "marker": "s", "label": "MaxPred (MSDNet)"},
    "entropy": {"color": "tab:green", "marker": "^", "label": "Entropy (BranchyNet)"},
    "oracle": {"color": "black", "marker": "x", "linestyle": "none", "label": "Oracle at the budgets"},
}


def static_rows(
    bench: str, probs: torch.Tensor, labels: torch.Tensor, costs_ms: list[float], flops: list[int], device: str
) -> list[dict[str, Any]]:
    """One summary row per single exit (:class:`StaticScheduler`: every test sample leaves at exit ``k``). ``probs [K, N, C]``."""
    rows = []
    for k in range(probs.shape[0]):
        sched = StaticScheduler(exit_index=k).fit(probs, labels, costs_ms, costs_ms[k])
        rows.append({
            "bench": bench, "method": f"static_exit{k}", "test_accuracy": sched.val_accuracy_,
            "test_cost_ms": costs_ms[k], "test_cost_flops": flops[k], "infeasible": False, "device": device,
            "exit_histogram": [int(k == j) * probs.shape[1] for j in range(probs.shape[0])],
        })  # fmt: skip
    return rows


def oracle_frontier(probs: torch.Tensor, labels: torch.Tensor, costs_ms: list[float], points: int = 60) -> list[tuple[float, float]]:
    """Best accuracy reachable at an average cost up to x: ``points`` oracle fits from the cheapest to the
    costliest exit's cost, as ``(cost, accuracy)``; once saturated, the curve stays flat up to the costliest exit."""
    lo, hi = min(costs_ms), max(costs_ms)
    out = []
    for i in range(points):
        sched = OracleScheduler().fit(probs, labels, costs_ms, lo + (hi - lo) * i / (points - 1))
        out.append((sched.val_cost_, sched.val_accuracy_))
    out.append((hi, out[-1][1]))
    return out


def plot_curve(
    rows: list[dict[str, Any]], title: str, caption: str, paths: list[str], frontier: list[tuple[float, float]] | None = None
) -> None:
    """Accuracy (%) against realised cost (ms/sample): one line per method, static exits as points.

    ``frontier``, the oracle's curve on the same test logits (:func:`oracle_frontier`), is drawn dashed;
    the oracle's rows at the configured budgets are drawn as markers on it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    methods = list(dict.fromkeys(r["method"] for r in rows if not str(r["method"]).startswith("static")))
    for m in methods:
        pts = sorted((r["test_cost_ms"], 100 * r["test_accuracy"]) for r in rows if r["method"] == m and not r.get("infeasible"))
        if not pts:
            continue
        style = {"linestyle": "-", **STYLE.get(m, {"label": m})}
        ax.plot([p[0] for p in pts], [p[1] for p in pts], **style)
    if frontier:
        ax.plot([c for c, _ in frontier], [100 * a for _, a in frontier], color="black", linestyle="--", label="Oracle (upper bound)")
    statics = [r for r in rows if str(r["method"]).startswith("static")]
    ax.scatter(
        [r["test_cost_ms"] for r in statics], [100 * r["test_accuracy"] for r in statics], color="gray", zorder=3, label="single exits"
    )
    for r in statics:
        ax.annotate(
            str(r["method"]).replace("static_", ""),
            (r["test_cost_ms"], 100 * r["test_accuracy"]),
            textcoords="offset points",
            xytext=(4, -10),
            fontsize=8,
        )
    ax.set_xlabel("realised average cost per sample (ms)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.text(0.01, 0.01, caption, fontsize=7, ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    for path in paths:
        from .io import atomic_path

        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.rsplit(".", 1)[-1])
    plt.close(fig)
