"""Calibrated baselines: MaxPred and Entropy on temperature-scaled probabilities (Guo et al., 2017).

Each exit gets one temperature ``T_k``, fitted on validation to minimise the negative log-likelihood of
``softmax(log p / T_k)`` (the cached probabilities stand in for the logits: ``log p`` differs from them by a
constant per sample, which the softmax ignores). The scores, and with them the thresholds of the geometric
exit distribution, are computed on the scaled probabilities. The thresholds pick, exit by exit, the most
confident share of the samples, so scaling matters where it changes that ranking: the scaled max probability
``p_max^(1/T) / sum_j p_j^(1/T)`` depends on the whole distribution, not on ``p_max`` alone.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from eenet.schedulers.threshold import GeometricScheduler, per_score

__all__ = ["fit_temperature", "nll", "TemperatureScaledScheduler", "TEMPERATURE_SCALED", "MaxPredTSScheduler", "EntropyTSScheduler"]


def nll(probs: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``softmax(log probs / T)``: ``probs [N, C]``, ``labels [N]``."""
    logp = F.log_softmax(torch.log(probs.double().clamp_min(1e-12)) / temperature, dim=1)
    return float(-logp.gather(1, labels.view(-1, 1)).mean())


def fit_temperature(probs: torch.Tensor, labels: torch.Tensor, lo: float = 0.05, hi: float = 20.0, iters: int = 60) -> float:
    """The ``T`` in ``[lo, hi]`` minimising :func:`nll` (golden-section search on ``log T``; the NLL is convex in ``1/T``)."""
    a, b = math.log(lo), math.log(hi)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(probs, labels, math.exp(c)), nll(probs, labels, math.exp(d))
    for _ in range(iters):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(probs, labels, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(probs, labels, math.exp(d))
    return math.exp(0.5 * (a + b))


class TemperatureScaledScheduler(GeometricScheduler):
    """A confidence score on per-exit temperature-scaled probabilities + the geometric exit distribution; registered
    once per score (``<score>_ts``) by :func:`~eenet.schedulers.threshold.per_score`.

    Fitted: ``temperatures_`` (``[K]``), and the geometric scheduler's ``log_rho_`` and ``thresholds_``.
    """

    method = "temperature_scaled"

    def _fit_calibration(self, probs: torch.Tensor, labels: torch.Tensor) -> None:
        self.temperatures_ = [fit_temperature(probs[k], labels) for k in range(probs.shape[0])]
        self._temperature_cache = None

    def _score_at(self, k: int, p: torch.Tensor) -> torch.Tensor:
        scaled = F.softmax(torch.log(p.float().clamp_min(1e-12)) / self._temperature(k, p.device), dim=-1)
        return super()._score_at(k, scaled)

    def _temperature(self, k: int, device: torch.device) -> torch.Tensor:
        cache = getattr(self, "_temperature_cache", None)
        if cache is None or cache[0] != device:
            self._temperature_cache = cache = (device, torch.tensor(self.temperatures_, dtype=torch.float32, device=device))
        return cache[1][k]

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "temperatures": self.temperatures_}

    def _load_state(self, state: dict[str, Any]) -> None:
        super()._load_state(state)
        self.temperatures_ = [float(t) for t in state["temperatures"]]
        self._temperature_cache = None


TEMPERATURE_SCALED = per_score(
    TemperatureScaledScheduler, "{}_ts", "{}TSScheduler", "{title} on temperature-scaled probabilities: {doc}, calibrated."
)
"""Score -> its temperature-scaled policy: ``maxpred_ts``, ``entropy_ts``."""
MaxPredTSScheduler, EntropyTSScheduler = TEMPERATURE_SCALED["maxpred"], TEMPERATURE_SCALED["entropy"]
