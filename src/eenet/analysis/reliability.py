"""How reliable is a policy's budget on data it has not seen? Re-split the cached outputs many times and count.

The cached validation and test outputs of a benchmark are pooled; ``resplits`` times (seeded), the pool is cut at
random into a *fit* part (as large as validation) and an *evaluation* part (the rest); every policy is fitted on the
fit part at every budget and evaluated on the evaluation part. Per policy and budget: how often the realised cost
exceeds the budget (with a Wilson 95 % interval), the 95th percentile of the relative excess, the spread of the
accuracy, and for a guaranteed policy (``<m>_guard``) its accuracy price, the mean paired difference to ``<m>``'s
accuracy on the same re-splits.

Each re-split is one draw of the fitting data, which is what a guarantee's ``1 - δ`` is over: the violation rate of a
cost-guaranteed policy estimates how often its *expected* cost exceeds the budget, plus the noise of the finite
evaluation part (which can push a realised cost over a budget the expected cost keeps).
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

from eenet.schedulers import InfeasibleBudgetError, accepted_params, accuracy, make_scheduler, realised_cost

__all__ = ["RELIABILITY_FIELDS", "split_indices", "reliability_study", "reliability_rows", "plot_reliability", "markdown_table"]

RELIABILITY_FIELDS = [
    "bench", "method", "budget_value", "budget_ms", "resplits", "fitted", "infeasible_share", "violation_rate",
    "violation_ci_low", "violation_ci_high", "violation_rate_tol", "excess_p95", "cost_ratio_mean", "accuracy_mean",
    "accuracy_std", "accuracy_q05", "accuracy_q50", "accuracy_q95", "base_method", "accuracy_price",
]  # fmt: skip
"""Columns of reliability.csv: one row per policy and budget. ``violation_rate``: share of the fitted re-splits whose
evaluation cost exceeds the budget (``_tol``: by more than the benchmark's tolerance); ``excess_p95``: 95th percentile of
``max(0, cost / budget - 1)``; ``accuracy_price``: mean over the re-splits of ``<base_method>``'s accuracy minus this
policy's (both fitted)."""

_POOL: dict[str, Any] = {}  # the pooled outputs, set once per worker process


def split_indices(n_total: int, n_fit: int, seed: int, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-split ``r`` of the pool: ``(fit indices [n_fit], evaluation indices [n_total - n_fit])``, seeded by ``(seed, r)``."""
    perm = torch.randperm(n_total, generator=torch.Generator().manual_seed(int(seed) * 1_000_003 + int(r)))
    return perm[:n_fit], perm[n_fit:]


def _init(probs: torch.Tensor, labels: torch.Tensor, costs: list[float], budgets: dict[float, float], n_fit: int, seed: int) -> None:
    torch.set_num_threads(1)
    _POOL.update(probs=probs, labels=labels, costs=costs, budgets=budgets, n_fit=n_fit, seed=seed)


def _task(method: str, params: dict[str, Any], r: int) -> list[tuple[str, float, int, float, float]]:
    """Fit ``method`` on re-split ``r``'s fit part at every budget, evaluate on the rest:
    ``(method, budget value, r, realised cost, accuracy)`` each (``nan`` when infeasible)."""
    probs, labels, costs = _POOL["probs"], _POOL["labels"], _POOL["costs"]
    fit, ev = split_indices(labels.numel(), _POOL["n_fit"], _POOL["seed"], r)
    costs_t = torch.tensor(costs, dtype=torch.float64)
    out = []
    for value, budget_ms in _POOL["budgets"].items():
        try:
            sched = make_scheduler(method, **accepted_params(method, params)).fit(probs[:, fit], labels[fit], costs, budget_ms)
        except InfeasibleBudgetError:
            out.append((method, value, r, math.nan, math.nan))
            continue
        exits = sched.assign(probs[:, ev], labels[ev])
        out.append((method, value, r, realised_cost(exits, costs_t), accuracy(probs[:, ev], labels[ev], exits)))
    return out


def reliability_study(
    val: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    costs_ms: Sequence[float],
    budgets: Mapping[float, float],
    methods: Mapping[str, dict[str, Any]],
    resplits: int = 100,
    seed: int = 0,
    method_resplits: Mapping[str, int] | None = None,
    workers: int = 1,
    log: Any = None,
) -> list[tuple[str, float, int, float, float]]:
    """Every policy at every budget on every re-split: ``(method, budget value, r, cost, accuracy)`` rows.

    ``val``, ``test``: ``(probs [K, N, C], labels [N])`` each; ``budgets``: budget value -> ms per sample; ``methods``:
    name -> hyper-parameters (what the constructor does not take is dropped); ``method_resplits``: fewer re-splits for
    some methods (EENet: the first ``n`` of the same re-splits). ``workers > 1``: processes, one torch thread each.
    """
    probs = torch.cat([val[0], test[0]], dim=1).float()
    labels = torch.cat([val[1], test[1]]).long()
    args = (probs, labels, [float(c) for c in costs_ms], dict(budgets), int(val[1].numel()), int(seed))
    tasks = [(m, dict(p), r) for m, p in methods.items() for r in range(min(resplits, (method_resplits or {}).get(m, resplits)))]
    tasks.sort(key=lambda t: not t[0].startswith("eenet"))  # the slow fits first, so that no worker is left with one at the end
    results: list[tuple[str, float, int, float, float]] = []
    if workers <= 1:
        _init(*args)
        for i, t in enumerate(tasks):
            results += _task(*t)
            if log is not None and (i + 1) % 50 == 0:
                log.info("%d of %d fits done", (i + 1) * len(budgets), len(tasks) * len(budgets))
        return results
    # fork, as DataLoader workers do (one torch thread each); spawn would re-run a Snakemake script's main module
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=args) as pool:
        for i, res in enumerate(pool.map(_task, *zip(*tasks, strict=True), chunksize=1)):
            results += res
            if log is not None and (i + 1) % 50 == 0:
                log.info("%d of %d fits done", (i + 1) * len(budgets), len(tasks) * len(budgets))
    return results


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def reliability_rows(
    bench: str, results: Sequence[tuple[str, float, int, float, float]], budgets: Mapping[float, float], tolerance: float
) -> list[dict[str, Any]]:
    """Rows of reliability.csv (:data:`RELIABILITY_FIELDS`) from :func:`reliability_study`'s results."""
    by: dict[tuple[str, float], dict[int, tuple[float, float]]] = {}
    for m, v, r, cost, acc in results:
        by.setdefault((m, v), {})[r] = (cost, acc)
    rows = []
    for (m, v), runs in sorted(by.items()):
        budget = float(budgets[v])
        fitted = {r: ca for r, ca in runs.items() if math.isfinite(ca[0])}
        row: dict[str, Any] = {"bench": bench, "method": m, "budget_value": v, "budget_ms": budget, "resplits": len(runs),
                               "fitted": len(fitted), "infeasible_share": 1 - len(fitted) / len(runs)}  # fmt: skip
        if fitted:
            cost = torch.tensor([c for c, _ in fitted.values()], dtype=torch.float64)
            acc = torch.tensor([a for _, a in fitted.values()], dtype=torch.float64)
            over = int((cost > budget).sum())
            lo, hi = _wilson(over, len(fitted))
            q = torch.quantile(acc, torch.tensor([0.05, 0.5, 0.95], dtype=torch.float64)).tolist()
            row.update({
                "violation_rate": over / len(fitted), "violation_ci_low": lo, "violation_ci_high": hi,
                "violation_rate_tol": float((cost > budget * (1 + tolerance)).double().mean()),
                "excess_p95": float(torch.quantile((cost / budget - 1).clamp_min(0), 0.95)),
                "cost_ratio_mean": float((cost / budget).mean()), "accuracy_mean": float(acc.mean()),
                "accuracy_std": float(acc.std()) if len(fitted) > 1 else 0.0,
                "accuracy_q05": q[0], "accuracy_q50": q[1], "accuracy_q95": q[2],
            })  # fmt: skip
            base = m[: -len("_guard")] if m.endswith("_guard") else None
            if base is not None and (base, v) in by:
                pairs = [
                    (by[(base, v)][r][1], a) for r, (_, a) in fitted.items() if r in by[(base, v)] and math.isfinite(by[(base, v)][r][1])
                ]
                row["base_method"] = base
                if pairs:
                    row["accuracy_price"] = sum(b - a for b, a in pairs) / len(pairs)
        rows.append(row)
    return rows


def plot_reliability(rows: Sequence[Mapping[str, Any]], title: str, paths: Sequence[str], delta: float | None = None) -> None:
    """Violation rate (with its Wilson 95 % interval) against the budget, one line per policy; ``delta`` dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eenet.analysis.plotting import save_figure

    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    methods = sorted({r["method"] for r in rows})
    bases = sorted({m.removesuffix("_guard") for m in methods})
    for m in methods:
        pts = sorted((float(r["budget_value"]), float(r["violation_rate"]), float(r["violation_ci_low"]), float(r["violation_ci_high"]))
                     for r in rows if r["method"] == m and r.get("violation_rate", "") not in ("", None))  # fmt: skip
        if not pts:
            continue
        x, y, lo, hi = zip(*pts, strict=True)
        style = "-" if m.endswith("_guard") else "--"  # a guaranteed policy solid, in its plain policy's colour
        colour = plt.get_cmap("tab10")(bases.index(m.removesuffix("_guard")) % 10)
        ax.errorbar(x, y, yerr=[[b - a for a, b in zip(lo, y, strict=True)], [b - a for a, b in zip(y, hi, strict=True)]],
                    fmt="o" + style, ms=4, capsize=2, label=m, color=colour)  # fmt: skip
    if delta is not None:
        ax.axhline(delta, color="black", lw=0.8, ls=":", label=f"δ = {delta:g}")
    ax.set_xlabel("budget (as configured)")
    ax.set_ylabel("share of re-splits over budget")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    save_figure(fig, list(paths))
    plt.close(fig)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Per policy and budget: violation rate (%), its 95 % interval, p95 excess (%), mean accuracy ± std (%), accuracy
    price (points); rows as read from reliability.csv (strings) or as made."""

    def f(r: Mapping[str, Any], k: str, scale: float = 100.0, fmt: str = ".1f") -> str:
        v = r.get(k, "")
        return "" if v in ("", None) or not math.isfinite(float(v)) else format(scale * float(v), fmt)

    lines = ["| policy | budget | re-splits | over budget (%) | 95 % interval | p95 excess (%) | accuracy (%) | accuracy price (points) |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        acc = f"{f(r, 'accuracy_mean', fmt='.2f')} ± {f(r, 'accuracy_std', fmt='.2f')}" if f(r, "accuracy_mean") else "infeasible"
        ci = f"{f(r, 'violation_ci_low')}–{f(r, 'violation_ci_high')}" if f(r, "violation_ci_low") else ""
        lines.append(f"| {r['method']} | {r['budget_value']} | {r['fitted']}/{r['resplits']} | {f(r, 'violation_rate')} | {ci} | "
                     f"{f(r, 'excess_p95', fmt='.2f')} | {acc} | {f(r, 'accuracy_price', fmt='+.2f')} |")  # fmt: skip
    return "\n".join(lines)
