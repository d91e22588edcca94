"""EERO: early exit with a reject option (Valade, Hebiri and Gay, "EERO: Early Exit with Reject Option for Efficient
Classification with limited budget", UAI 2025, PMLR 286:4290-4308; arXiv:2402.03779).

What of the paper this is. The paper (abstract, and its OpenReview TL;DR) treats the exits as classifiers with a reject
option, each one passing on the samples it rejects; it calibrates the probabilities of exiting at the different exits by
aggregation with exponential weights, so that a fixed average budget holds, weighing each exit's (Bayes) risk and its
cost. Those are the facts it is built on; the paper's method section (its exact formulas, how it picks its temperature)
could not be read here, so the formulas below are this module's, written to those facts, with every choice named:

- the reject option of exit ``k``: Chow's rule on the plug-in conditional risk ``1 - max_c p_k(c|x)``; exit ``k`` keeps
  (accepts) the samples it sees whose conditional risk is lowest, i.e. whose max probability is highest, up to its share
  ``q_k``, and rejects (passes on) the rest. The last exit accepts everything. On the cached outputs that is MaxPred's
  score thresholded exit by exit (:func:`~eenet.schedulers.base.thresholds_for_distribution`, MSDNet's rule);
- the probabilities of exiting, by exponential weights over the exits: ``q_k ∝ exp(-(R_k + λ c_k / c_max) / T)``, with
  ``R_k`` the risk of exit ``k``'s classifier, estimated by its misclassification rate on validation, ``c_k`` its cost
  (cumulative, ms; ``c_max`` the largest) and ``T`` the temperature. This is the Gibbs distribution that minimises
  ``Σ q_k R_k + T·KL(q || uniform)`` subject to ``Σ q_k c_k <= budget``, ``λ >= 0`` the constraint's multiplier;
- the budget: ``λ`` is found by bisection (:func:`~eenet.schedulers.base.search_budget`, as the project's other
  policies search their one scalar) as the smallest ``λ >= 0`` whose realised validation cost is within the budget.
  At ``λ = 0`` the constraint is not binding: where deeper exits do not lower the risk enough, EERO spends less than the
  budget (it does not "overthink");
- the temperature ``T``: a number given (``temperature``), or, by default (``None``), the value of
  :data:`TEMPERATURES` whose fit reaches the highest validation accuracy within the budget (the smallest on a tie);
  every value tried is recorded (``selection_``). This choice is ours.

Deviations, as far as the abstract lets one tell: the exit shares are applied deterministically (the most confident
``q_k`` share of the samples still running leaves at exit ``k``) rather than drawn at random, so that the runtime's exit
by exit decisions and :meth:`assign` agree sample for sample; everything is fitted on validation alone, risks and
thresholds on the same samples.

Shapes: ``probs [K, N, C]`` (softmax of every exit, or a combiner's outputs), ``labels [N]``, ``costs [K]``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from eenet.schedulers.base import realised_cost, register_method, search_budget
from eenet.schedulers.threshold import GeometricScheduler

__all__ = ["TEMPERATURES", "exit_risks", "exponential_weights", "EEROScheduler"]

TEMPERATURES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
"""The temperatures tried when none is given (on the scale of a risk, a share of samples in ``[0, 1]``)."""


def exit_risks(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``R [K]`` (float64): each exit's misclassification rate, ``probs [K, N, C]``, ``labels [N]``."""
    return (probs.argmax(dim=2) != labels.view(1, -1)).double().mean(dim=1)


def exponential_weights(risks: torch.Tensor, costs: torch.Tensor, lam: float, temperature: float) -> torch.Tensor:
    """``q [K]`` (float64): ``q_k ∝ exp(-(R_k + λ c_k / max c) / T)`` for ``risks [K]``, ``costs [K]``."""
    c = costs.double() / costs.double().max()
    return F.softmax(-(risks.double() + float(lam) * c) / float(temperature), dim=0)


@register_method
class EEROScheduler(GeometricScheduler):
    """EERO (Valade et al., UAI 2025): the exits as classifiers with a reject option (Chow's rule on ``1 - max p``),
    their exit shares by exponential weights on risk and cost, ``λ`` meeting the budget (module docstring).

    Hyper-parameter: ``temperature`` (``T > 0``; ``None``: chosen on validation among :data:`TEMPERATURES`). Fitted:
    ``risks_`` (``[K]``), ``temperature_``, ``lambda_``, ``thresholds_`` (``[K]``, on the max probability),
    ``selection_`` (per temperature tried: its ``λ``, validation accuracy and cost).
    """

    method = "eero"
    score = "maxpred"

    def __init__(self, temperature: float | None = None) -> None:
        self.temperature = temperature
        if temperature is not None and not (math.isfinite(float(temperature)) and float(temperature) > 0):
            raise ValueError(f"the EERO temperature must be a positive number (or None: chosen on validation), got {temperature}")

    @property
    def exit_distribution_(self) -> list[float]:
        """The fitted ``q [K]`` (the exponential weights at ``temperature_`` and ``lambda_``)."""
        return exponential_weights(torch.tensor(self.risks_), torch.tensor(self.costs_), self.lambda_, self.temperature_).tolist()

    def _fit_at(self, scores: torch.Tensor, correct: torch.Tensor, risks: torch.Tensor, costs: torch.Tensor, temperature: float
                ) -> tuple[float, torch.Tensor, float, float]:  # fmt: skip
        """``(λ, thresholds [K], validation accuracy, validation cost)`` at one temperature."""
        c = costs.double() / costs.double().max()
        gap = float((c[1:] - c[0]).min()) if c.numel() > 1 else 1.0
        # at λ = lam_max every later exit weighs at most e^-50 of exit 0: all of the mass on the cheapest exit
        lam_max = (50.0 * temperature + float(risks.max() - risks.min())) / max(gap, 1e-12)
        t, th, ex = search_budget(scores, lambda s: exponential_weights(risks, costs, -s, temperature), costs, self.budget_, -lam_max, 0.0)
        return -t, th, float(correct.gather(0, ex.view(1, -1)).double().mean()), realised_cost(ex, costs)

    def _fit(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> None:
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
        self.selection_ = [dict(s) for s in state.get("selection", [])]
