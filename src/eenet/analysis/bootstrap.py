"""The statistics under stats.csv: a paired bootstrap of many comparisons at once (over test samples, and over
training seeds and test samples together), the Holm adjustment of a family of p-values, and the grouping of policies
that take the same decisions. Pure functions of tensors; :mod:`eenet.analysis.stats` applies them to a benchmark.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["paired_bootstrap", "bootstrap_comparisons", "holm", "alias_groups", "row_policies"]


def _counts(n: int, reps: int, gen: torch.Generator, rows: int | None = None) -> list[torch.Tensor]:
    """How often each of ``n`` items is drawn (with replacement, ``n`` draws) in each of ``reps`` replicates, as
    float32 ``[m, n]`` chunks of ``rows`` replicates (default: about two million draws a chunk)."""
    rows = rows or max(1, 2_000_000 // n)
    out = []
    for i in range(0, reps, rows):
        m = min(rows, reps - i)
        c = torch.zeros(m, n, dtype=torch.float32)
        c.scatter_add_(1, torch.randint(0, n, (m, n), generator=gen), torch.ones(m, n, dtype=torch.float32))
        out.append(c)
    return out


def bootstrap_comparisons(diffs: torch.Tensor, reps: int = 2000, level: float = 0.95, seed: int = 0) -> dict[str, torch.Tensor]:
    """Bootstrap of K paired comparisons at once: ``diffs [K, S, N]``, per comparison, training seed and test sample
    the difference of the outcomes (policy minus reference; ``[K, N]`` for one seed).

    Each of ``reps`` replicates draws the N test samples with replacement and, independently, the S seeds with
    replacement (seeded by ``seed``); the draws are the same for every comparison (paired) and, test samples being
    the same images in every seed, one test-sample draw serves every drawn seed (a crossed design: seeds and test
    samples are resampled together, not test samples within each seed). A replicate's statistic is the mean over
    drawn seeds of the mean difference over drawn samples. Returns float64 ``[K]`` tensors:

    - ``diff``: the mean difference over seeds and samples;
    - ``ci_low``, ``ci_high``, ``p``: the percentile interval at ``level`` and the two-sided p-value with the test
      samples resampled only (every seed kept);
    - ``seed_ci_low``, ``seed_ci_high``, ``seed_p``: the same with the seeds resampled too (two-level bootstrap; equal
      to the former for S = 1).

    The p-value of replicates ``t``: ``2 min(share(t <= 0), share(t >= 0))``, at most 1 (the interval at level
    ``1 - p`` just reaches 0). Where no replicate lies on the far side of 0 the bootstrap cannot resolve it (it is below
    ``1 / reps``); it is then the normal approximation's, ``erfc(|diff| / (sd(t) sqrt 2))``, capped at ``1 / (reps + 1)``
    and at least the smallest positive double. A floor of ``1 / (reps + 1)`` instead would stop every comparison from
    surviving a Holm adjustment over more than ``0.05 (reps + 1)`` of them (100 at 2,000 replicates), however large
    its effect. Outcomes in {0, 1} make the sums exact in float32 (fast); replicates of a chunk are one matrix product
    per chunk.
    """
    d = diffs if diffs.dim() == 3 else diffs.unsqueeze(1)
    if d.dim() != 3 or d.shape[-1] == 0:
        raise ValueError(f"bootstrap_comparisons: want diffs [K, S, N] or [K, N], got {tuple(diffs.shape)}")
    k, s, n = d.shape
    small = d.numel() == 0 or float(d.abs().max()) <= 1
    exact = (not d.is_floating_point() or bool(torch.equal(d, d.round()))) and small and s * n < 2**23
    flat = d.reshape(k * s, n).to(torch.float32 if exact else torch.float64)
    g_test = torch.Generator().manual_seed(int(seed))
    g_seed = torch.Generator().manual_seed((int(seed) * 1_000_003 + 7_919) % 2**62)
    w = _counts(s, reps, g_seed, rows=reps)[0].to(flat.dtype)  # [reps, S]: how often each seed is drawn
    test, both = torch.empty(k, reps, dtype=torch.float64), torch.empty(k, reps, dtype=torch.float64)
    i = 0
    for c in _counts(n, reps, g_test):
        m = c.shape[0]
        part = (flat @ c.to(flat.dtype).T).view(k, s, m)  # per seed, the sum of the drawn samples' differences
        test[:, i : i + m] = part.sum(dim=1).double()
        both[:, i : i + m] = (part * w[i : i + m].T.unsqueeze(0)).sum(dim=1).double()
        i += m
    test /= s * n
    both /= s * n
    alpha = (1.0 - level) / 2
    q = torch.tensor([alpha, 1 - alpha], dtype=torch.float64)

    diff = d.double().mean(dim=(1, 2))

    def p_value(t: torch.Tensor) -> torch.Tensor:
        share = torch.minimum((t <= 0).double().mean(dim=1), (t >= 0).double().mean(dim=1))
        sd = t.std(dim=1)
        normal = torch.special.erfc(diff.abs() / (sd * 2**0.5))  # sd 0, diff not 0: 0 (every replicate the same side)
        tail = normal.nan_to_num(1.0).clamp(max=1.0 / (reps + 1))
        return torch.where(share > 0, 2 * share, tail).clamp(min=torch.finfo(torch.float64).tiny, max=1.0)

    lo, hi = torch.quantile(test, q, dim=1)
    slo, shi = torch.quantile(both, q, dim=1)
    return {
        "diff": diff, "ci_low": lo, "ci_high": hi, "p": p_value(test),
        "seed_ci_low": slo, "seed_ci_high": shi, "seed_p": p_value(both),
    }  # fmt: skip


def paired_bootstrap(a: torch.Tensor, b: torch.Tensor, reps: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Accuracy of ``a`` minus that of ``b`` and its percentile bootstrap interval.

    ``a``, ``b``: ``bool [N]`` (the same test samples), or ``bool [S, N]``: S seeds' outcomes on the same N test
    samples, the difference then being the mean over seeds. Test samples are drawn with replacement ``reps`` times
    (seeded), one draw for all seeds (a test sample's outcomes under every seed stay together); each draw gives one
    difference of means. Returns ``(difference, low, high)`` at confidence ``level``. The same draws as
    :func:`bootstrap_comparisons` (``ci_low``, ``ci_high``) with the same ``seed``.
    """
    if a.shape != b.shape or a.dim() not in (1, 2):
        raise ValueError(f"paired outcomes need two [N] or [S, N] tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    d = (a.to(torch.int8) - b.to(torch.int8)) if a.dtype == torch.bool else a.double() - b.double()
    r = bootstrap_comparisons(d.reshape(1, -1, a.shape[-1]), reps, level, seed)
    return float(r["diff"][0]), float(r["ci_low"][0]), float(r["ci_high"][0])


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given: the i-th smallest of m p-values times ``m - i + 1``
    (i from 1), made non-decreasing in that order and capped at 1. Rejecting where the adjusted value is below
    alpha controls the family-wise error rate at alpha under any dependence between the tests."""
    m = len(pvalues)
    out = [1.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda j: pvalues[j])):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        out[i] = running
    return out


def row_policies(row: Mapping[str, Any]) -> list[str]:
    """The policies a stats.csv row stands for: its ``method``, then its ``aliases`` (``;``-separated; the same
    decisions, :func:`alias_groups`)."""
    return [row["method"], *(a for a in (row.get("aliases") or "").split(";") if a)]


def alias_groups(
    methods: Sequence[str], decisions: Mapping[tuple[str, Any], torch.Tensor] | Sequence[Mapping[tuple[str, Any], torch.Tensor]]
) -> dict[str, list[str]]:
    """Policies that take the same decisions, grouped: ``{representative: [its aliases]}``, every policy once.

    ``decisions``: per run (one mapping, or one per training seed of a seed study) ``{(method, budget_value):
    tensor}``, the policy's decision on every test sample, as :func:`policy_decisions` gives (exit and predicted
    class, ``int64 [2, N]``); an infeasible (policy, budget) has no entry. Two policies are identical when, in every
    run and at every budget of the study (any budget value in ``decisions``), either both have no entry, or both
    have one and the tensors are equal (same shape, same values); a policy feasible where the other is not is not
    identical, and a policy without any entry (infeasible everywhere) is identical to none. This is an equivalence,
    so each group is the set of policies identical to its first. The representative is MaxPred where it is in the
    group (the reference of every comparison keeps its name), else the first of ``methods`` (config order; policies
    only in ``decisions`` come after them); the aliases follow in that order.
    """
    runs = [decisions] if isinstance(decisions, Mapping) else list(decisions)
    order = list(dict.fromkeys([*methods, *(m for d in runs for m, _ in d)]))
    budgets = list(dict.fromkeys(b for d in runs for _, b in d))

    def same(m1: str, m2: str) -> bool:
        for d in runs:
            for b in budgets:
                x, y = d.get((m1, b)), d.get((m2, b))
                if (x is None) != (y is None) or (x is not None and (x.shape != y.shape or not torch.equal(x, y))):
                    return False
        return True

    groups: list[list[str]] = []
    for m in order:
        feasible = any((m, b) in d for d in runs for b in budgets)
        group = next((g for g in groups if feasible and same(g[0], m)), None) if feasible else None
        if group is None:
            groups.append([m])
        else:
            group.append(m)
    out = {}
    for g in groups:
        rep = "maxpred" if "maxpred" in g else g[0]
        out[rep] = [m for m in g if m != rep]
    return out
