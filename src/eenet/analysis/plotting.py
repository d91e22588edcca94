"""The accuracy-vs-cost figure and the summary table of a benchmark."""

from __future__ import annotations

from typing import Any

import torch

from eenet.catalog import COMBINERS as COMBINER_INFO
from eenet.catalog import METHODS as METHOD_INFO
from eenet.catalog import split_method
from eenet.schedulers import OracleScheduler, StaticScheduler

__all__ = [
    "static_rows", "oracle_frontier", "add_measured", "aggregate_seed_rows", "plot_curve", "plot_runtime", "save_figure", "SUMMARY_FIELDS",
]  # fmt: skip

SUMMARY_FIELDS = [
    "bench", "seed", "method", "budget_value", "budget_unit", "budget_ms", "test_accuracy", "test_cost_ms", "test_cost_flops",
    "cost_ratio", "within_tolerance", "val_accuracy", "val_cost_ms", "exit_histogram", "infeasible", "note", "device",
    "measured_ms", "measured_q1", "measured_q3", "measured_vs_simulated", "speedup_vs_full", "measured_batch_size",
    "measured_batch_ms", "measured_samples", "test_accuracy_min", "test_accuracy_max", "plain_ms", "speedup_vs_plain",
    "speedup_vs_plain_test",
]  # fmt: skip
"""Columns of summary.csv. ``seed``: the run's training seed, or ``mean`` for a row over seeds, whose numbers are
means and ``test_accuracy_min/max`` the spread of the seeds. ``plain_ms``: the plain network (stages + last head,
measured by the runtime at batch 1), ``speedup_vs_plain`` its time over the policy's on the timed sample (runtime.csv's
``samples``), ``speedup_vs_plain_test`` the same quoted for the whole test set (runtime.csv's): the speed-up a user gets
over running the network without early exit; ``speedup_vs_full`` is over ``model(x)``, which also runs every intermediate head."""

# summary columns averaged over seeds (the rest are kept from the first seed where they agree)
_MEAN_FIELDS = [
    "budget_ms", "test_accuracy", "test_cost_ms", "test_cost_flops", "cost_ratio", "val_accuracy", "val_cost_ms",
    "measured_ms", "measured_q1", "measured_q3", "measured_vs_simulated", "speedup_vs_full", "measured_batch_ms",
    "plain_ms", "speedup_vs_plain", "speedup_vs_plain_test",
]  # fmt: skip

STYLE = {m: {**info["style"], "label": info["label"]} for m, info in METHOD_INFO.items() if info["style"]}
"""Each policy's colour, marker, line and label in the figures (:data:`eenet.catalog.METHODS`)."""

COMBINER_LABELS = {name: info["label"] for name, info in COMBINER_INFO.items()}


def style_of(method: str) -> dict[str, Any]:
    """Plot style of a method; ``"<combiner>+<policy>"`` takes its policy's colour and marker, dashed."""
    comb, base = split_method(method)
    if comb is None:
        return dict(STYLE.get(method, {"color": "gray", "marker": "." if method.startswith("static") else "d", "label": method}))
    style = dict(STYLE.get(base, {"color": "gray", "marker": "d", "label": base}))
    dashed = "--" if style.get("linestyle") != "none" else "none"
    style.update({"linestyle": dashed, "label": f"{COMBINER_LABELS[comb]} + {style['label']}"})
    return style


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


def add_measured(rows: list[dict[str, Any]], runtime: list[dict[str, str]]) -> None:
    """Copy the runtime's measurements (rows of runtime.csv) into the summary ``rows`` of the same policy: at
    batch 1 ``measured_ms`` (median, quartiles), ``measured_vs_simulated``, ``plain_ms``, ``speedup_vs_plain``,
    ``speedup_vs_plain_test``, ``speedup_vs_full``; at the larger
    batch size ``measured_batch_ms``. Rows the runtime did not run (the oracle, infeasible budgets) are left as they are."""
    by_key: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    for r in runtime:
        by_key.setdefault((r["method"], str(r["budget_value"])), {})[r["batch_size"]] = r
    for row in rows:
        found = by_key.get((str(row["method"]), str(row.get("budget_value", ""))))
        if not found:
            continue
        one = found.get("1")
        if one:
            keys = ("measured_ms", "measured_q1", "measured_q3", "measured_vs_simulated", "speedup_vs_full", "plain_ms", "speedup_vs_plain",
                    "speedup_vs_plain_test")  # fmt: skip
            row.update({k: float(one[k]) for k in keys if one.get(k) not in (None, "")})  # runtime.csv before 0.2: no plain_*
            row["measured_samples"] = int(one["samples"])
        batched = [r for bs, r in found.items() if bs != "1"]
        if batched:
            row.update({"measured_batch_size": int(batched[0]["batch_size"]), "measured_batch_ms": float(batched[0]["measured_ms"])})


def aggregate_seed_rows(bench: str, rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Rows over seeds from every seed's summary rows (read from summary.csv, with ``seed``): per (method, budget)
    the mean of the numeric columns, ``test_accuracy_min/max`` over seeds; ``within_tolerance`` true only if every
    seed's was. A policy infeasible in some seed is infeasible over seeds (the note says in how many)."""
    groups: dict[tuple[str, str], list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["budget_value"]), []).append(r)
    out = []
    for (method, budget), rs in groups.items():
        first = rs[0]
        row: dict[str, Any] = {"bench": bench, "seed": "mean", "method": method, "budget_value": budget,
                               "budget_unit": first["budget_unit"], "device": first["device"]}  # fmt: skip
        bad = [r for r in rs if r["infeasible"] == "True"]
        if bad:
            row.update({"infeasible": True, "note": f"infeasible in {len(bad)} of {len(rs)} seeds"})
            out.append(row)
            continue
        for k in _MEAN_FIELDS:
            vals = [float(r[k]) for r in rs if r.get(k, "") != ""]
            if len(vals) == len(rs):
                row[k] = sum(vals) / len(vals)
        accs = [float(r["test_accuracy"]) for r in rs]
        row.update({"infeasible": False, "test_accuracy_min": min(accs), "test_accuracy_max": max(accs),
                    "measured_samples": first.get("measured_samples", "")})  # fmt: skip
        if first.get("within_tolerance", "") != "":
            row["within_tolerance"] = all(r["within_tolerance"] == "True" for r in rs)
        out.append(row)
    return out


def save_figure(fig: Any, paths: list[str]) -> None:
    """Write a matplotlib figure to every path (its format from the extension), each atomically."""
    from eenet.io import atomic_path

    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.rsplit(".", 1)[-1])


def plot_runtime(runtime: list[dict[str, str]], title: str, caption: str, paths: list[str]) -> None:
    """Measured against simulated cost (left, batch 1, with the ±15 % band) and the speed-up over the plain network
    (stages + last head; ``model(x)`` for a runtime.csv without it) against the simulated cost (right, every batch
    size; on the whole test set, ``speedup_vs_plain_test`` against ``test_simulated_ms``, where runtime.csv has them),
    one marker per policy and budget (rows of runtime.csv)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4.4))
    methods = list(dict.fromkeys(r["method"] for r in runtime))
    # the plain network is the baseline; a runtime.csv written before it was timed has only model(x)
    speedup = "speedup_vs_plain" if runtime and runtime[0].get("speedup_vs_plain") not in (None, "") else "speedup_vs_full"
    whole = bool(runtime) and runtime[0].get("speedup_vs_plain_test") not in (None, "")  # quoted for the whole test set
    if whole:
        speedup = "speedup_vs_plain_test"
    sim_x = "test_simulated_ms" if whole else "simulated_ms"
    hi = max([float(r["simulated_ms"]) for r in runtime] + [float(r["measured_ms"]) for r in runtime if r["batch_size"] == "1"])
    ax.plot([0, hi], [0, hi], color="black", linewidth=0.8, label="measured = simulated")
    ax.fill_between([0, hi], [0, 0.85 * hi], [0, 1.15 * hi], color="gray", alpha=0.15, label="±15 %")
    for m in methods:
        style = style_of(m)
        style = {k: v for k, v in style.items() if k != "linestyle"}
        for bs, fill in (("1", True), *((b, False) for b in sorted({r["batch_size"] for r in runtime} - {"1"}))):
            pts = [r for r in runtime if r["method"] == m and r["batch_size"] == bs]
            if not pts:
                continue
            extra = {} if fill else {"facecolors": "none", "label": f"{style['label']} (batch {bs})"}
            kw = {**style, **extra}
            if bs == "1":
                ax.scatter([float(r["simulated_ms"]) for r in pts], [float(r["measured_ms"]) for r in pts], **kw)
            bx.scatter([float(r[sim_x]) for r in pts], [float(r[speedup]) for r in pts],
                       **({**kw, "label": f"{style['label']} (batch {bs})"}))  # fmt: skip
    bx.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("simulated cost per sample (ms)")
    ax.set_ylabel("measured latency per sample, batch 1 (ms)")
    bx.set_xlabel("simulated cost per sample, whole test set (ms)" if whole else "simulated cost per sample (ms)")
    bx.set_ylabel("speed-up over the plain network (x)" if speedup != "speedup_vs_full" else "speed-up over model(x), every head (x)")
    for a in (ax, bx):
        a.grid(alpha=0.3)
        a.legend(fontsize=7, loc="upper left")
    fig.suptitle(title)
    fig.text(0.01, 0.01, caption, fontsize=7, ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    save_figure(fig, paths)
    plt.close(fig)


def plot_curve(
    rows: list[dict[str, Any]],
    title: str,
    caption: str,
    paths: list[str],
    frontier: list[tuple[float, float]] | None = None,
    x_axis: str = "simulated",
    auc: dict[str, float] | None = None,
    plain_ms: float | None = None,
    cuts: list[tuple[float, float]] | None = None,
    trained: list[tuple[str, float, float]] | None = None,
) -> None:
    """Accuracy (%) against realised cost (ms/sample): one line per method, static exits as points.

    ``cuts``: the plain-network frontier (:func:`eenet.analysis.frontier.frontier_points`), ``(measured ms, test
    accuracy)`` of the network cut after each exit with that exit's head only, the last the plain network: drawn as
    a grey line, what a user could run instead of early exit. ``trained``: the frontier's plain networks trained alone
    (:func:`eenet.analysis.frontier.network_points`), ``(name, measured ms, test accuracy)``: the ``depth<k>`` networks
    (the first k stages, one head) as a brown line, each ``width<m>`` network as a diamond.

    ``plain_ms``: the plain network's cost (stages + last head, no early exit; on the same axis as ``x_axis``),
    drawn as a vertical reference line: a policy left of it is faster than running the network without early exit.

    ``x_axis``: ``simulated`` (``test_cost_ms``) or ``measured`` (``measured_ms``, the runtime at batch 1, where a
    row has it; the oracle and its frontier stay simulated). ``frontier``, the oracle's curve on the same test
    logits (:func:`oracle_frontier`), is drawn dashed; the oracle's rows at the configured budgets are drawn as markers on it.
    ``auc``: a policy's mean accuracy over the budget range (stats.csv), added to its legend entry. Rows over seeds
    (with ``test_accuracy_min/max``) get a shaded band from the lowest to the highest seed.
    """
    if x_axis not in ("simulated", "measured"):
        raise ValueError(f"x_axis must be 'simulated' or 'measured', got {x_axis!r}")

    def x(r: dict[str, Any]) -> float:
        return float(r["measured_ms"]) if x_axis == "measured" and r.get("measured_ms") not in (None, "") else float(r["test_cost_ms"])

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    methods = list(dict.fromkeys(r["method"] for r in rows if not str(r["method"]).startswith("static")))
    for m in methods:
        pts = sorted((x(r), 100 * r["test_accuracy"]) for r in rows if r["method"] == m and not r.get("infeasible"))
        if not pts:
            continue
        style = {"linestyle": "-", **style_of(m)}
        if auc and m in auc:
            style["label"] = f"{style['label']} (AUC {100 * auc[m]:.2f})"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], **style)
        band = sorted((x(r), 100 * r["test_accuracy_min"], 100 * r["test_accuracy_max"])
                      for r in rows if r["method"] == m and not r.get("infeasible") and r.get("test_accuracy_min") is not None)  # fmt: skip
        if band and m != "oracle":
            ax.fill_between([b[0] for b in band], [b[1] for b in band], [b[2] for b in band], color=style.get("color"), alpha=0.15)
    if frontier:
        ax.plot([c for c, _ in frontier], [100 * a for _, a in frontier], color="black", linestyle="--",
                label="Oracle (upper bound)" + (", simulated cost" if x_axis == "measured" else ""))  # fmt: skip
    if cuts:
        ax.plot([c for c, _ in cuts], [100 * a for _, a in cuts], color="gray", linestyle="-", marker="x", linewidth=1.2,
                label="plain networks: cut after each exit, its head only (measured)")  # fmt: skip
    depths = sorted((ms, acc) for name, ms, acc in trained or [] if name.startswith("depth"))
    if depths:
        ax.plot([c for c, _ in depths], [100 * a for _, a in depths], color="tab:brown", linestyle="-", marker="+", linewidth=1.2,
                label="plain networks trained alone: first k stages, one head (measured)")  # fmt: skip
    widths = [(name, ms, acc) for name, ms, acc in trained or [] if name.startswith("width")]
    if widths:
        ax.scatter([ms for _, ms, _ in widths], [100 * acc for _, _, acc in widths], color="tab:brown", marker="D", zorder=3,
                   label="the plain network trained alone at another width (measured)")  # fmt: skip
        for name, ms, acc in widths:
            ax.annotate(f"x{float(name[5:]):g}", (ms, 100 * acc), textcoords="offset points", xytext=(4, 4), fontsize=8, color="tab:brown")
    if plain_ms is not None:
        ax.axvline(plain_ms, color="dimgray", linestyle=":", linewidth=1.2, label=f"plain network, no early exit ({plain_ms:.3g} ms)")
    statics = [r for r in rows if str(r["method"]).startswith("static")]
    ax.scatter([x(r) for r in statics], [100 * r["test_accuracy"] for r in statics], color="gray", zorder=3, label="single exits")
    for r in statics:
        ax.annotate(
            str(r["method"]).replace("static_", ""),
            (x(r), 100 * r["test_accuracy"]),
            textcoords="offset points",
            xytext=(4, -10),
            fontsize=8,
        )
    ax.set_xlabel("measured latency per sample, batch 1 (ms)" if x_axis == "measured" else "realised average cost per sample (ms)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.text(0.01, 0.01, caption, fontsize=7, ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    save_figure(fig, paths)
    plt.close(fig)
