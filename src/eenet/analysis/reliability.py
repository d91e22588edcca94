"""How reliable is a policy's budget on data it has not seen? Re-split the cached outputs many times and count.

The cached validation and test outputs of a benchmark are pooled; ``resplits`` times (seeded), the pool is cut at
random into a *fit* part (as large as validation) and an *evaluation* part (the rest); every policy is fitted on the
fit part at every budget and evaluated on the evaluation part. Per policy and budget: how often the realised cost
exceeds the budget (with a Wilson 95 % interval), the 95th percentile of the relative excess, the spread of the
accuracy, the share of evaluation samples that lose against the last exit (and, where the benchmark's guarantee is on
accuracy loss, how often that share exceeds its ``ε``), and for a guaranteed policy (``<m>_guard``) its accuracy price,
the mean paired difference to ``<m>``'s accuracy on the same re-splits.

A combined policy (``<combiner>+<method>``, :class:`~eenet.schedulers.CombinedPolicy`; ``ztw_ens+maxpred_guard`` too)
reads the raw logits: its combiner is fitted on the fit part's logits once per re-split (shared by every budget and
every method composed with it, as :func:`~eenet.schedulers.fit_budgets` shares it), the method on the combined
probabilities of the fit part as fit_budgets gives them (the policy's ``combiner_fit``: out-of-fold ones by default,
:func:`~eenet.schedulers.compose.fit_combiner`); it is evaluated on the combined probabilities of the evaluation part
(its accuracy, and its accuracy loss against the combined last exit, what its guarantee is about).

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

from eenet.catalog import split_method
from eenet.schedulers import CombinedPolicy, InfeasibleBudgetError, accepted_params, accuracy, make_scheduler, realised_cost
from eenet.schedulers.compose import combiner_fit_options, fit_combiner
from eenet.schedulers.guarantee import LOSSES, guarantee_spec, lost_against_last

__all__ = [
    "RELIABILITY_FIELDS", "split_indices", "accuracy_loss", "reliability_study", "guarantee_label", "reliability_rows", "plot_reliability",
    "markdown_table",
]  # fmt: skip

RELIABILITY_FIELDS = [
    "bench", "method", "budget_value", "budget_ms", "resplits", "fitted", "infeasible_share", "violation_rate",
    "violation_ci_low", "violation_ci_high", "violation_rate_tol", "excess_p95", "cost_ratio_mean", "accuracy_mean",
    "accuracy_std", "accuracy_q05", "accuracy_q50", "accuracy_q95", "base_method", "accuracy_price", "guarantee", "loss_mean",
    "loss_violation_rate", "loss_violation_ci_low", "loss_violation_ci_high",
]  # fmt: skip
"""Columns of reliability.csv: one row per policy and budget. ``violation_rate``: share of the fitted re-splits whose
evaluation cost exceeds the budget (``_tol``: by more than the benchmark's tolerance); ``excess_p95``: 95th percentile of
``max(0, cost / budget - 1)``; ``accuracy_price``: mean over the re-splits of ``<base_method>``'s accuracy minus this
policy's (both fitted); ``guarantee``: what a guaranteed policy's guarantee bounds (``cost, δ 0.05``; empty for the
others); ``loss_mean``: mean share of evaluation samples that lose against the last exit (the guarantee's ``loss``:
``disagree`` unless it says ``worse``); ``loss_violation_rate``: where the guarantee is on accuracy loss, the share of
fitted re-splits whose loss exceeds its ``ε`` (for a plain policy: how often it would break the same statement), with
its Wilson interval."""

_POOL: dict[str, Any] = {}  # the pooled outputs, set once per worker process


def split_indices(n_total: int, n_fit: int, seed: int, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-split ``r`` of the pool: ``(fit indices [n_fit], evaluation indices [n_total - n_fit])``, seeded by ``(seed, r)``."""
    perm = torch.randperm(n_total, generator=torch.Generator().manual_seed(int(seed) * 1_000_003 + int(r)))
    return perm[:n_fit], perm[n_fit:]


def accuracy_loss(probs: torch.Tensor, labels: torch.Tensor, exits: torch.Tensor, loss: str = "disagree") -> float:
    """Share of samples that lose against the last exit, as a guarantee on accuracy loss counts them
    (:mod:`eenet.schedulers.guarantee`): ``disagree``, the prediction at the sample's exit differs from the last exit's;
    ``worse``, the last exit is right and it is not. ``probs [K, N, C]`` (what the policy reads), ``exits int64 [N]``."""
    preds = probs.argmax(dim=2)  # [K, N]
    return float(lost_against_last(preds, preds.gather(0, exits.view(1, -1)).squeeze(0), labels, loss).double().mean())


def _init(probs: torch.Tensor, logits: torch.Tensor | None, labels: torch.Tensor, costs: list[float], budgets: dict[float, float],
          n_fit: int, seed: int, loss: str) -> None:  # fmt: skip
    torch.set_num_threads(1)
    _POOL.update(probs=probs, logits=logits, labels=labels, costs=costs, budgets=budgets, n_fit=n_fit, seed=seed, loss=loss, combined={})


def _combined(comb: str, r: int, fit: torch.Tensor, ev: torch.Tensor, options: Mapping[str, Any] | None = None
              ) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """Combiner ``comb`` fitted on re-split ``r``'s fit part as :func:`~eenet.schedulers.compose.fit_combiner` fits it
    (``options``: the policy's ``combiner_fit``), the probabilities of the fit part the method is fitted on with their
    labels, and the combiner's probabilities on the evaluation part; kept for the tasks of the same re-split (the tasks
    run re-split by re-split: one re-split's are kept at a time)."""
    cache, opts = _POOL["combined"], combiner_fit_options(options)
    key = (comb, r, tuple(sorted(opts.items())))
    if key not in cache:
        if any(k[1] != r for k in cache):
            cache.clear()
        logits, labels = _POOL["logits"], _POOL["labels"]
        combiner, p_fit, rows = fit_combiner(comb, logits[:, fit], labels[fit], _POOL["costs"], opts)
        cache[key] = (combiner, p_fit, labels[fit] if rows is None else labels[fit][rows], combiner.transform(logits[:, ev]))
    return cache[key]


def _task(method: str, params: dict[str, Any], r: int) -> list[tuple[str, float, int, float, float, float]]:
    """Fit ``method`` on re-split ``r``'s fit part at every budget, evaluate on the rest:
    ``(method, budget value, r, realised cost, accuracy, accuracy loss)`` each (``nan`` when infeasible)."""
    probs, labels, costs = _POOL["probs"], _POOL["labels"], _POOL["costs"]
    fit, ev = split_indices(labels.numel(), _POOL["n_fit"], _POOL["seed"], r)
    costs_t = torch.tensor(costs, dtype=torch.float64)
    comb, base = split_method(method)
    combiner = None
    if comb is None:
        p_fit, y_fit, p_ev = probs[:, fit], labels[fit], probs[:, ev]
    else:
        combiner, p_fit, y_fit, p_ev = _combined(comb, r, fit, ev, params.get("combiner_fit"))
    out = []
    for value, budget_ms in _POOL["budgets"].items():
        policy = make_scheduler(base, **accepted_params(base, params))
        sched = policy if combiner is None else CombinedPolicy(combiner, policy)
        try:
            sched.fit(p_fit, y_fit, costs, budget_ms)
        except InfeasibleBudgetError:
            out.append((method, value, r, math.nan, math.nan, math.nan))
            continue
        exits = sched.assign(p_ev, labels[ev])
        out.append((method, value, r, realised_cost(exits, costs_t), accuracy(p_ev, labels[ev], exits),
                    accuracy_loss(p_ev, labels[ev], exits, _POOL["loss"])))  # fmt: skip
    return out


def _slow(method: str) -> bool:
    """EENet and its ablations, alone or after a combiner: a fit takes seconds."""
    return split_method(method)[1].startswith("eenet")


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
    logits: tuple[torch.Tensor, torch.Tensor] | None = None,
    loss: str = "disagree",
) -> list[tuple[str, float, int, float, float, float]]:
    """Every policy at every budget on every re-split: ``(method, budget value, r, cost, accuracy, accuracy loss)`` rows.

    ``val``, ``test``: ``(probs [K, N, C], labels [N])`` each; ``budgets``: budget value -> ms per sample; ``methods``:
    name -> hyper-parameters (what the constructor does not take is dropped), combined policies
    (``<combiner>+<method>``) among them; ``method_resplits``: fewer re-splits for some methods (EENet: the first ``n``
    of the same re-splits). ``workers > 1``: processes from a fork server, one torch thread each; like spawned ones
    they import the caller's main file again, so a script that calls this keeps its work under ``if __name__ ==
    "__main__"``. ``logits``: the raw logits ``[K, N, C]`` of validation and test, which a combined policy needs;
    ``loss``: the accuracy loss counted
    (:func:`accuracy_loss`: the guarantee's, ``disagree`` or ``worse``).
    """
    combined = [m for m in methods if split_method(m)[0] is not None]
    if combined and logits is None:
        raise ValueError(f"{', '.join(combined)} need the raw logits of every exit: pass logits=(val logits, test logits)")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    probs = torch.cat([val[0], test[0]], dim=1).float()
    pooled_logits = None if logits is None else torch.cat([logits[0], logits[1]], dim=1).float()
    labels = torch.cat([val[1], test[1]]).long()
    args = (probs, pooled_logits, labels, [float(c) for c in costs_ms], dict(budgets), int(val[1].numel()), int(seed), loss)
    tasks = [(m, dict(p), r) for m, p in methods.items() for r in range(min(resplits, (method_resplits or {}).get(m, resplits)))]
    # the slow fits first, so that no worker is left with one at the end; then re-split by re-split, so that the
    # combiner fitted on a re-split serves every policy composed with it
    tasks.sort(key=lambda t: (not _slow(t[0]), t[2]))
    results: list[tuple[str, float, int, float, float, float]] = []
    if workers <= 1:
        _init(*args)
        for i, t in enumerate(tasks):
            results += _task(*t)
            if log is not None and (i + 1) % 50 == 0:
                log.info("%d of %d fits done", (i + 1) * len(budgets), len(tasks) * len(budgets))
        return results
    # not fork: a process that has run torch.export (or started autograd's device threads) cannot run autograd in a
    # forked child (RuntimeError "Autograd-and-Fork"; the combiner and EENet fits need it). A fork server started
    # fresh, with this module imported once, forks clean workers. Each worker re-runs the caller's main module under
    # the name __mp_main__, as spawn does: a script calling this keeps its work under `if __name__ == "__main__"`.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
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


def guarantee_label(spec: Mapping[str, Any]) -> str:
    """What a guarantee bounds, in a few words: ``cost, δ 0.05``, ``accuracy_loss (disagree), ε 0.01, δ 0.05``."""
    if spec["risk"] == "cost":
        return f"cost, δ {float(spec['delta']):g}"
    return f"accuracy_loss ({spec['loss']}), ε {float(spec['epsilon']):g}, δ {float(spec['delta']):g}"


def reliability_rows(
    bench: str,
    results: Sequence[tuple[Any, ...]],
    budgets: Mapping[float, float],
    tolerance: float,
    guarantee: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Rows of reliability.csv (:data:`RELIABILITY_FIELDS`) from :func:`reliability_study`'s results (a result without
    its accuracy loss, ``(method, value, r, cost, accuracy)``, leaves the loss columns empty). ``guarantee``: the
    benchmark's ``guarantee`` block (``None``: the default, cost at δ = 0.05)."""
    g = guarantee or {}
    spec = guarantee_spec(g.get("cost"), g.get("accuracy_loss"))
    epsilon = float(spec["epsilon"]) if spec["risk"] == "accuracy_loss" else None
    by: dict[tuple[str, float], dict[int, tuple[float, float, float]]] = {}
    for m, v, r, cost, acc, *rest in results:
        by.setdefault((m, v), {})[r] = (cost, acc, rest[0] if rest else math.nan)
    rows = []
    for (m, v), runs in sorted(by.items()):
        budget = float(budgets[v])
        fitted = {r: ca for r, ca in runs.items() if math.isfinite(ca[0])}
        row: dict[str, Any] = {"bench": bench, "method": m, "budget_value": v, "budget_ms": budget, "resplits": len(runs),
                               "fitted": len(fitted), "infeasible_share": 1 - len(fitted) / len(runs)}  # fmt: skip
        if fitted:
            cost = torch.tensor([c for c, _, _ in fitted.values()], dtype=torch.float64)
            acc = torch.tensor([a for _, a, _ in fitted.values()], dtype=torch.float64)
            lost = torch.tensor([d for _, _, d in fitted.values() if math.isfinite(d)], dtype=torch.float64)
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
            if lost.numel():
                row["loss_mean"] = float(lost.mean())
                if epsilon is not None:
                    broken = int((lost > epsilon).sum())
                    lo, hi = _wilson(broken, lost.numel())
                    row.update({"loss_violation_rate": broken / lost.numel(), "loss_violation_ci_low": lo, "loss_violation_ci_high": hi})
            base = m[: -len("_guard")] if m.endswith("_guard") else None
            if base is not None and (base, v) in by:
                pairs = [
                    (by[(base, v)][r][1], a) for r, (_, a, _) in fitted.items() if r in by[(base, v)] and math.isfinite(by[(base, v)][r][1])
                ]
                row["base_method"] = base
                if pairs:
                    row["accuracy_price"] = sum(b - a for b, a in pairs) / len(pairs)
        if m.endswith("_guard"):
            row["guarantee"] = guarantee_label(spec)
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
    cmap = plt.get_cmap("tab20" if len(bases) > 10 else "tab10")
    for m in methods:
        pts = sorted((float(r["budget_value"]), float(r["violation_rate"]), float(r["violation_ci_low"]), float(r["violation_ci_high"]))
                     for r in rows if r["method"] == m and r.get("violation_rate", "") not in ("", None))  # fmt: skip
        if not pts:
            continue
        x, y, lo, hi = zip(*pts, strict=True)
        style = "-" if m.endswith("_guard") else "--"  # a guaranteed policy solid, in its plain policy's colour
        colour = cmap(bases.index(m.removesuffix("_guard")) % cmap.N)
        marker = "^" if "+" in m else "o"  # a combined policy's points triangles
        ax.errorbar(x, y, yerr=[[b - a for a, b in zip(lo, y, strict=True)], [b - a for a, b in zip(y, hi, strict=True)]],
                    fmt=marker + style, ms=4, capsize=2, label=m, color=colour)  # fmt: skip
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
    price (points), and where the rows have it the mean accuracy loss (%) and how often it exceeds the guarantee's ``ε``
    (%); rows as read from reliability.csv (strings) or as made."""

    def f(r: Mapping[str, Any], k: str, scale: float = 100.0, fmt: str = ".1f") -> str:
        v = r.get(k, "")
        return "" if v in ("", None) or not math.isfinite(float(v)) else format(scale * float(v), fmt)

    loss = any(f(r, "loss_mean") for r in rows)
    eps = any(f(r, "loss_violation_rate") for r in rows)
    extra = [" mean accuracy loss (%) |"] * loss + [" loss over ε (%) |"] * eps
    lines = ["| policy | budget | re-splits | over budget (%) | 95 % interval | p95 excess (%) | accuracy (%) | accuracy price (points) |"
             + "".join(extra), "|---|---|---|---|---|---|---|---|" + "---|" * len(extra)]  # fmt: skip
    for r in rows:
        acc = f"{f(r, 'accuracy_mean', fmt='.2f')} ± {f(r, 'accuracy_std', fmt='.2f')}" if f(r, "accuracy_mean") else "infeasible"
        ci = f"{f(r, 'violation_ci_low')}–{f(r, 'violation_ci_high')}" if f(r, "violation_ci_low") else ""
        cells = [f(r, "loss_mean", fmt=".2f")] * loss + [f(r, "loss_violation_rate")] * eps
        lines.append(f"| {r['method']} | {r['budget_value']} | {r['fitted']}/{r['resplits']} | {f(r, 'violation_rate')} | {ci} | "
                     f"{f(r, 'excess_p95', fmt='.2f')} | {acc} | {f(r, 'accuracy_price', fmt='+.2f')} |"
                     + "".join(f" {c} |" for c in cells))  # fmt: skip
    return "\n".join(lines)
