"""EERO: early exit with a reject option (Valade, Hebiri and Gay, "EERO: Early Exit with Reject Option for Efficient
Classification with limited budget", UAI 2025, PMLR 286:4290-4308; arXiv:2402.03779), as its section 3 states it:

- **the reject option of exit k** (its Definition 3.3): exit ``k`` answers a sample when its score's empirical CDF
  there is at least ``1 - ε``, i.e. when the score is among the highest ``ε`` share of the calibration samples' scores
  at exit ``k`` -- *all* of them, not only those still running. The score is the max probability (Chow's plug-in rule,
  Proposition 3.2; the paper's Remark 3.4 allows another and its experiments used the top-1 minus top-2 margin). The
  last exit answers everything;
- **the rates, by exponential weights** (Proposition 3.8): ``q_k = π_k exp(-(R_k + μ c_k) / β) / Z``, with ``R_k`` exit
  ``k``'s misclassification rate, ``c_k`` the cost of a sample that leaves there (cumulative; here the profiled ms,
  scaled by the largest: a rescaling of ``μ``), the prior ``π_k ∝ 1 / c_k`` and ``μ = max(0, μ̄)``, ``μ̄`` solving
  ``Σ q_k c_k = budget``: the minimiser of ``Σ q_k R_k + β KL(q || π)`` under ``Σ q_k c_k <= budget`` (eqs. 6-7).
  ``μ = 0`` where the budget does not bind: EERO then spends less than it (it does not "overthink");
- **the thresholds, exit after exit** (eqs. 8-9, Algorithm 1): exit ``k`` is calibrated to the cumulative rate
  ``Q_k = Σ_{j<=k} q_j`` plus the paper's finite-sample margin ``C / sqrt(N)`` with ``C = Q_k`` ("C = ε leads to good
  results"), so at least that share of the calibration samples has left by exit ``k`` (Theorem 3.12): the realised
  validation cost is at most the expected ``Σ q_k c_k``, hence within the budget;
- **β**: the paper's 0.04 ("in all our experiments we set β = 0.04", Appendix A) by default (``temperature``); ``None``
  chooses it on validation among :data:`TEMPERATURES` (the most accurate within the budget; each value tried is recorded
  in ``selection_``), which is this module's option, not the paper's.

Choices the paper leaves open: the calibration samples are the validation set, for the risks and the CDFs alike (the
paper estimates the CDFs on unlabelled data and advises splitting labelled data, Remark 3.6); no ``10^-5`` tie-breaking
noise on the score (ties keep their order, the decision stays exit by exit and deterministic). The decision reads exit
``k`` only, a max probability against a threshold, so the runtime, a combiner and the export run it as MaxPred.

Shapes: ``probs [K, N, C]`` (softmax of every exit, or a combiner's outputs), ``labels [N]``, ``costs [K]``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from eenet.schedulers.base import InfeasibleBudgetError, assign_by_thresholds, realised_cost, register_method
from eenet.schedulers.threshold import GeometricScheduler

__all__ = ["BETA", "TEMPERATURES", "exit_risks", "exponential_weights", "expected_cost", "cumulative_thresholds", "EEROScheduler"]

BETA = 0.04
"""The paper's temperature β (Appendix A: the same in all its experiments), the default."""

TEMPERATURES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
"""The temperatures tried with ``temperature=None`` (on the scale of a risk, a share of samples in ``[0, 1]``)."""


def exit_risks(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``R [K]`` (float64): each exit's misclassification rate, ``probs [K, N, C]``, ``labels [N]``."""
    return (probs.argmax(dim=2) != labels.view(1, -1)).double().mean(dim=1)


def exponential_weights(risks: torch.Tensor, costs: torch.Tensor, lam: float, temperature: float) -> torch.Tensor:
    """``q [K]`` (float64): ``q_k ∝ π_k exp(-(R_k + λ c_k / max c) / T)`` with the prior ``π_k ∝ 1 / c_k``, for
    ``risks [K]``, ``costs [K]`` (positive)."""
    c = costs.double() / costs.double().max()
    return F.softmax(-torch.log(c) - (risks.double() + float(lam) * c) / float(temperature), dim=0)


def expected_cost(q: torch.Tensor, costs: torch.Tensor) -> float:
    """``Σ q_k c_k``: the cost per sample when a share ``q_k`` leaves at exit ``k`` (``q [K]``, ``costs [K]``)."""
    return float((q.double() * costs.double()).sum())


def cumulative_thresholds(scores: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """EERO's thresholds ``T [K]`` (eqs. 8-9): ``T_k`` is the ``m_k``-th largest of exit ``k``'s scores over *all* ``N``
    samples, ``m_k = ceil(N Q_k (1 + 1 / sqrt(N)))`` (at most ``N``) for the cumulative rate ``Q_k = Σ_{j<=k} q_j``, so
    that at least a share ``Q_k`` of them has left by exit ``k``; ``+inf`` where ``m_k = 0``, ``-inf`` at the last exit.
    ``scores [K, N]`` (higher: more confident), ``q [K]``."""
    k_exits, n = scores.shape
    cum = torch.cumsum(q.double().clamp_min(0), dim=0) * (1.0 + 1.0 / math.sqrt(n))
    counts = torch.ceil(cum * n - 1e-9).clamp(0, n).long()
    thresholds = torch.full((k_exits,), math.inf, dtype=scores.dtype)
    thresholds[-1] = -math.inf
    for k in range(k_exits - 1):
        m = int(counts[k])
        if m > 0:
            thresholds[k] = torch.topk(scores[k], m).values[-1]
    return thresholds


@register_method
class EEROScheduler(GeometricScheduler):
    """EERO (Valade et al., UAI 2025): the exits as classifiers with a reject option (Chow's rule on ``1 - max p``),
    their rates by exponential weights on risk and cost with the prior ``π ∝ 1 / c``, ``λ`` meeting the budget in
    expectation, thresholds on the cumulative rates (module docstring).

    Hyper-parameter: ``temperature`` (β ``> 0``, default the paper's :data:`BETA`; ``None``: chosen on validation among
    :data:`TEMPERATURES`). Fitted:
    ``risks_`` (``[K]``), ``temperature_``, ``lambda_``, ``exit_distribution_`` (the rates ``q [K]``), ``thresholds_``
    (``[K]``, on the max probability),
    ``selection_`` (per temperature tried: its ``λ``, validation accuracy and cost).
    """

    method = "eero"
    score = "maxpred"

    def __init__(self, temperature: float | None = BETA) -> None:
        self.temperature = temperature
        if temperature is not None and not (math.isfinite(float(temperature)) and float(temperature) > 0):
            raise ValueError(f"the EERO temperature must be a positive number (or None: chosen on validation), got {temperature}")

    @property
    def exit_distribution_(self) -> list[float]:
        """The fitted rates ``q [K]`` (the exponential weights at ``temperature_`` and ``lambda_``)."""
        return self.rates_

    def _fit_at(self, scores: torch.Tensor, correct: torch.Tensor, risks: torch.Tensor, costs: torch.Tensor, temperature: float
                ) -> tuple[float, torch.Tensor, float, float]:  # fmt: skip
        """``(λ, thresholds [K], validation accuracy, validation cost)`` at one temperature: ``λ = 0`` when the weights'
        expected cost is within the budget, else the ``λ`` (bisection; the expected cost falls as ``λ`` grows) at which
        it meets the budget."""
        # the expected cost a hair under the budget: the realised cost, a mean of N costs, then stays within it in floating point
        budget, c = self.budget_ * (1.0 - 1e-9), costs.double()

        def weights(lam: float) -> torch.Tensor:
            return exponential_weights(risks, costs, lam, temperature)

        lam = 0.0
        if expected_cost(weights(0.0), c) > budget:
            cn = c / c.max()
            gap = float((cn[1:] - cn[0]).min()) if cn.numel() > 1 else 1.0
            # at λ = hi every later exit weighs at most e^-50 of exit 0 (the prior included): its mass ~1
            spread = float(risks.max() - risks.min()) + temperature * float(torch.log(cn / cn[0]).max())
            lo, hi = 0.0, (50.0 * temperature + spread) / max(gap, 1e-12)
            for _ in range(100):
                mid = 0.5 * (lo + hi)
                lo, hi = (lo, mid) if expected_cost(weights(mid), c) <= budget else (mid, hi)
            lam = hi
        th = cumulative_thresholds(scores, weights(lam))
        ex = assign_by_thresholds(scores, th)
        return lam, th, float(correct.gather(0, ex.view(1, -1)).double().mean()), realised_cost(ex, costs)

    def _fit(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> None:
        lowest = float(costs.double().min())
        if lowest > self.budget_:
            raise InfeasibleBudgetError(
                f"budget {self.budget_:.6g} is below the lowest cost this policy can reach on validation ({lowest:.6g})"
            )
        risks = exit_risks(probs, labels)
        scores = self.scores(probs)
        correct = probs.argmax(dim=2) == labels.view(1, -1)
        temps = [float(self.temperature)] if self.temperature is not None else list(TEMPERATURES)
        fits, selection = [], []
        for temperature in temps:
            lam, th, acc, cost = self._fit_at(scores, correct, risks, costs, temperature)
            fits.append((acc, temperature, lam, th))
            selection.append({"temperature": temperature, "lambda": lam, "val_accuracy": acc, "val_cost": cost})
        best = max(range(len(fits)), key=lambda i: (fits[i][0], -i))  # the most accurate; on a tie the first (smallest T)
        _, self.temperature_, self.lambda_, th = fits[best]
        self.risks_ = risks.tolist()
        self.rates_ = exponential_weights(risks, costs, self.lambda_, self.temperature_).tolist()
        self.thresholds_ = th.tolist()
        self.selection_ = selection
        self.__dict__.pop("_threshold_cache", None)

    def _state(self) -> dict[str, Any]:
        return {
            "params": self.get_params(),
            "score": self.score,
            "risks": self.risks_,
            "temperature": self.temperature_,
            "lambda": self.lambda_,
            "thresholds": self.thresholds_,
            "exit_distribution": self.exit_distribution_,
            "selection": self.selection_,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self.risks_ = [float(r) for r in state["risks"]]
        self.temperature_, self.lambda_ = float(state["temperature"]), float(state["lambda"])
        self.thresholds_ = [float(t) for t in state["thresholds"]]
        self.rates_ = [float(q) for q in state["exit_distribution"]]
        self.selection_ = [dict(s) for s in state.get("selection", [])]
