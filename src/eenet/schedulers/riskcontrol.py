"""Risk control on a calibration set: the concentration bound, and the three ways of certifying the settings of an
ordered family that :class:`eenet.schedulers.guarantee.GuaranteeMixin` offers (its ``calibration``), as Jazbec et al.
(2024, "Fast yet Safe: Early-Exiting with Risk Control") compare them for early exit:

- ``ltt``: Learn-then-Test (Angelopoulos et al., 2021): each setting's p-value of "risk above the target"
  (:func:`pvalue`), tested in order from the safe end (fixed-sequence testing); every setting before the first that
  fails is certified, all together with probability ``1 - δ``. Any loss in [0, 1], monotone or not.
- ``ucb``: upper confidence bound (Bates et al., 2021, "Distribution-free, risk-controlling prediction sets"): the
  most efficient setting whose upper bound at level ``1 - δ`` (:func:`upper_bound`, the same bound) is at most the
  target, and every safer one. With probability ``1 - δ``.
- ``crc``: conformal risk control (Angelopoulos et al., 2022): the most efficient setting with
  ``n/(n+1) R̂ + B/(n+1) <= ε`` (``R̂`` the mean of ``n`` calibration losses, ``B = 1`` their bound), and every safer
  one. In expectation over the draw of the calibration samples (no ``δ``): less conservative.

``ucb`` and ``crc`` need a loss that is monotone along the family, sample by sample. Cost is (every sample's exit
grows with the setting); an accuracy loss is not (a sample can disagree with the last exit at exit 1 and agree at exit
2), so both read the monotonised loss ``L̃_i(t) = max_{s <= t} L_i(s)`` over the settings ``s`` from the safe end up to
``t`` (Angelopoulos et al., 2022, §2): ``L̃ >= L`` bounds the risk from above, and its mean, hence the bound and CRC's
statistic, is monotone along the order, so the settings that pass are a prefix of it.

Shapes: ``losses [G, N]`` (``G`` settings of the family, ``N`` calibration samples, values in [0, 1]); ``order [G]``
the settings from the safe end.
"""

from __future__ import annotations

import math

import torch

__all__ = ["BOUNDS", "CALIBRATIONS", "pvalue", "upper_bound", "monotonised", "certify", "certified_bound"]

BOUNDS = ("hoeffding_bentkus", "hoeffding")
"""``hoeffding_bentkus``: the smaller of the two p-values (Bates et al., 2021); ``hoeffding``: Hoeffding's alone."""
CALIBRATIONS = ("ltt", "ucb", "crc")
"""How the settings are certified (module docstring): Learn-then-Test, upper confidence bound, conformal risk control."""


# ---------------------------------------------------------------------------------------------------
# the bound


def _h1(a: torch.Tensor, b: float) -> torch.Tensor:
    """Bernoulli KL divergence ``KL(a ‖ b)`` (``0 log 0 = 0``)."""
    a = a.double()
    left = torch.where(a > 0, a * torch.log(a.clamp_min(1e-300) / b), torch.zeros_like(a))
    right = torch.where(a < 1, (1 - a) * torch.log((1 - a).clamp_min(1e-300) / (1 - b)), torch.zeros_like(a))
    return left + right


def _binom_log_cdf(n: int, p: float) -> torch.Tensor:
    """``log P(Bin(n, p) <= k)`` for ``k = 0..n``: ``[n + 1]``."""
    i = torch.arange(n + 1, dtype=torch.float64)
    log_pmf = torch.lgamma(torch.tensor(n + 1.0, dtype=torch.float64)) - torch.lgamma(i + 1) - torch.lgamma(n - i + 1)
    log_pmf = log_pmf + i * math.log(p) + (n - i) * math.log1p(-p)
    return torch.logcumsumexp(log_pmf, dim=0)


def pvalue(loss_sum: torch.Tensor, n: int, alpha: float, bound: str = "hoeffding_bentkus") -> torch.Tensor:
    """p-value of the null "expected loss > ``alpha``" given the sum of ``n`` losses in [0, 1] (``[G]`` sums -> ``[G]``).

    Hoeffding: ``exp(-n KL(min(R, α) ‖ α))`` with ``R`` the mean loss; Bentkus: ``e · P(Bin(n, α) <= ⌈n R⌉)``;
    ``hoeffding_bentkus`` takes the smaller (valid for any loss bounded in [0, 1]).
    """
    if bound not in BOUNDS:
        raise ValueError(f"unknown bound {bound!r}; known: {BOUNDS}")
    s = torch.as_tensor(loss_sum, dtype=torch.float64)
    if alpha <= 0:
        return torch.ones_like(s)
    if alpha >= 1:
        return torch.zeros_like(s)
    risk = (s / n).clamp(0, 1)
    p = torch.exp(-n * _h1(risk.clamp_max(alpha), alpha))
    if bound == "hoeffding_bentkus":
        k = torch.ceil(s - 1e-9).clamp(0, n).long()  # sums of 0/1 losses are whole numbers up to rounding
        p = torch.minimum(p, math.e * torch.exp(_binom_log_cdf(n, alpha)[k]))
    return p.clamp_max(1.0)


def upper_bound(risk: float, n: int, delta: float, bound: str = "hoeffding_bentkus") -> float:
    """The upper confidence bound at level ``1 - δ`` of the expected loss, from the mean ``risk`` of ``n`` losses in
    [0, 1]: the smallest ``α`` whose :func:`pvalue` is at most ``δ`` (bisection). A setting is certified for a target
    ``α`` exactly when this bound is at most ``α``; for a given mean it shrinks as ``n`` grows."""
    if bound not in BOUNDS:
        raise ValueError(f"unknown bound {bound!r}; known: {BOUNDS}")
    r = min(1.0, max(0.0, float(risk)))
    k = min(n, max(0, math.ceil(r * n - 1e-9)))
    i = torch.arange(k + 1, dtype=torch.float64)  # P(Bin(n, a) <= k) = sum over i <= k: the binomial terms up to k only
    log_choose = math.lgamma(n + 1) - torch.lgamma(i + 1) - torch.lgamma(n - i + 1)

    def p_value(a: float) -> float:
        if a >= 1:
            return 0.0
        p = math.exp(-n * float(_h1(torch.tensor(min(r, a)), a)))
        if bound == "hoeffding_bentkus":
            p = min(p, math.e * math.exp(float(torch.logsumexp(log_choose + i * math.log(a) + (n - i) * math.log1p(-a), 0))))
        return p

    lo, hi = r, 1.0
    if r > 0 and p_value(lo) <= delta:
        return lo
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if p_value(mid) <= delta:
            hi = mid
        else:
            lo = mid
    return hi


# ---------------------------------------------------------------------------------------------------
# the calibrations


def monotonised(losses: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """``L̃ [G, N]`` of ``losses [G, N]``: at each setting, each sample's largest loss over the settings from the safe
    end (``order[0]``) up to it, so that every sample's loss is non-decreasing along ``order``."""
    out = torch.empty_like(losses)
    out[order] = torch.cummax(losses[order], dim=0).values
    return out


def certify(
    losses: torch.Tensor, order: torch.Tensor, target: float, delta: float, calibration: str = "ltt", bound: str = "hoeffding_bentkus"
) -> tuple[list[int], torch.Tensor]:
    """The settings certified for "risk <= ``target``" by ``calibration`` (module docstring), from ``losses [G, N]`` of
    ``N`` calibration samples in [0, 1] and ``order [G]`` (the settings from the safe end).

    Returns ``(certified, sums)``: the certified settings, a prefix of ``order`` (empty: none; ``ltt`` stops at the
    first setting that fails, for ``ucb`` and ``crc`` the settings that pass are a prefix), and ``sums [G]``, the sum
    of the losses each setting was judged by (the monotonised ones for ``ucb`` and ``crc``).
    """
    if calibration not in CALIBRATIONS:
        raise ValueError(f"unknown calibration {calibration!r}; known: {CALIBRATIONS}")
    n = int(losses.shape[1])
    used = losses.double() if calibration == "ltt" else monotonised(losses.double(), order)
    sums = used.sum(dim=1)
    if calibration == "crc":
        passed = (sums + 1.0) / (n + 1) <= target + 1e-12  # n/(n+1) R̂ + B/(n+1), B = 1
    else:  # ltt, ucb: p-value <= δ exactly when the upper bound at 1 - δ is <= the target
        passed = pvalue(sums, n, target, bound) <= delta
    certified = []
    for j in order.tolist():
        if not bool(passed[j]):
            break
        certified.append(j)
    return certified, sums


def certified_bound(risk: float, n: int, delta: float, calibration: str = "ltt", bound: str = "hoeffding_bentkus") -> float:
    """What a setting of mean loss ``risk`` over ``n`` calibration samples is certified by, against the target: its
    upper confidence bound at ``1 - δ`` (``ltt``, ``ucb``), or CRC's ``n/(n+1) R̂ + 1/(n+1)`` (``crc``)."""
    if calibration == "crc":
        return (n * float(risk) + 1.0) / (n + 1)
    return upper_bound(risk, n, delta, bound)
