"""Threshold policies with a distribution-free guarantee: Learn-then-Test risk control (Angelopoulos et al., 2021),
as CALM (Schuster et al., 2022) and Jazbec et al. (2024) apply it to early exit.

A guaranteed policy is a threshold policy (``maxpred``, ``entropy`` and their temperature-scaled variants) whose
thresholds are one member of an ordered family ``T(λ)``, ``λ ∈ [-1, 1]``, chosen on validation so that, with
probability at least ``1 - δ`` over the draw of the validation samples, one of

- ``cost``: the expected cost per sample is at most the budget, or
- ``accuracy_loss``: the share of samples whose prediction differs from the last exit's (``disagree``), or that the
  last exit gets right and the chosen exit wrong (``worse``), is at most ``ε``,

holds for new samples exchangeable with the validation samples. How (docs/guarantees.md):

1. validation is split (seeded) into a *shape* part (``shape_fraction``) and a *calibration* part;
2. the plain policy is fitted on the shape part at the budget (its temperatures too): thresholds ``T*``;
3. the family moves every threshold along a line: ``λ = -1`` lets every sample leave at exit 0, ``λ = 0`` is
   ``T*``, ``λ = 1`` keeps every sample to the last exit. Every threshold grows with ``λ``, so every sample's exit
   does too: the family is ordered, and it depends on the shape part only;
4. on the calibration part, each setting of a grid of ``λ`` is tested (Hoeffding-Bentkus p-value of "risk above the
   target", losses bounded in [0, 1]: costs are scaled by the range of the exit costs) in order from the safe end
   (fixed-sequence testing: no correction for the number of settings); the settings tested before the first that
   fails are certified, all together with probability ``1 - δ`` (``calibration: ltt``; Jazbec et al.'s two others,
   ``ucb`` -- the most efficient setting whose upper bound is within the target -- and ``crc`` -- conformal risk
   control, in expectation over the draw of validation rather than with probability ``1 - δ`` -- are in
   :mod:`~eenet.schedulers.riskcontrol`);
5. cost: the costliest certified setting. Accuracy loss: the costliest certified setting whose validation cost is
   within the budget (infeasible when even the cheapest certified one costs more).

The fitted policy *is* the wrapped threshold policy with thresholds ``T(λ̂)``: :meth:`assign`, :meth:`leaves` and
the adaptive runtime are the wrapped policy's, unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from eenet.schedulers.base import InfeasibleBudgetError
from eenet.schedulers.calibrated import TemperatureScaledScheduler
from eenet.schedulers.riskcontrol import BOUNDS, CALIBRATIONS, certified_bound, certify, pvalue, upper_bound
from eenet.schedulers.threshold import GeometricScheduler, per_score

__all__ = [
    "BOUNDS", "CALIBRATIONS", "LOSSES", "pvalue", "upper_bound", "threshold_family", "family_exits", "guarantee_spec", "lost_against_last",
    "GeometricGuardScheduler", "TemperatureScaledGuardScheduler", "GUARDED", "TEMPERATURE_SCALED_GUARDED",
    "MaxPredGuardScheduler", "EntropyGuardScheduler", "MaxPredTSGuardScheduler", "EntropyTSGuardScheduler",
]  # fmt: skip

LOSSES = ("disagree", "worse")
"""Accuracy loss of a sample: its prediction differs from the last exit's / the last exit is right and it is not."""
BELOW, ABOVE = -1e-3, 1.0 + 1e-3  # outside the scores' range [0, 1]: every sample passes / none does


# ---------------------------------------------------------------------------------------------------
# the ordered family of thresholds


def lost_against_last(preds: torch.Tensor, chosen: torch.Tensor, labels: torch.Tensor, loss: str) -> torch.Tensor:
    """Which samples lose against the last exit, as the accuracy-loss guarantee counts them: ``disagree``, the chosen
    exit's prediction differs from the last exit's; ``worse``, the last exit is right and the chosen one is not.
    ``preds int64 [K, N]`` (each exit's argmax), ``chosen int64 [..., N]`` (the predictions at the chosen exits),
    ``labels [N]`` -> ``bool [..., N]``."""
    if loss == "disagree":
        return chosen != preds[-1]
    if loss == "worse":
        return (preds[-1] == labels) & (chosen != labels)
    raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")


def threshold_family(base: torch.Tensor, lambdas: torch.Tensor) -> torch.Tensor:
    """Thresholds ``[G, K]`` (float32) of settings ``lambdas [G]`` in ``[-1, 1]`` around ``base [K]`` (scores in [0, 1]).

    ``λ <= 0`` moves each threshold towards a value below every score (``λ = -1``: every sample leaves at exit 0),
    ``λ >= 0`` towards one above every score (``λ = 1``: every sample runs to the last exit); the last exit's
    threshold stays ``-inf``. Every threshold is non-decreasing in ``λ``.
    """
    t = base.double().clamp(0.0, 1.0).view(1, -1)
    lam = lambdas.double().view(-1, 1)
    out = torch.where(lam <= 0, t + (-lam) * (BELOW - t), t + lam * (ABOVE - t)).float()
    out[:, -1] = -math.inf
    return out


def family_exits(scores: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Exits ``int64 [G, N]`` of scores ``[K, N]`` under each row of thresholds ``[G, K]`` (first exit with
    ``score >= threshold``, as :func:`eenet.schedulers.base.assign_by_thresholds`)."""
    k_exits = scores.shape[0]
    s = scores.float()
    exits = torch.full((thresholds.shape[0], s.shape[1]), k_exits - 1, dtype=torch.long)
    for k in range(k_exits - 2, -1, -1):  # the earliest exit passed wins
        exits = torch.where(s[k].unsqueeze(0) >= thresholds[:, k : k + 1], k, exits)
    return exits


def guarantee_spec(cost: dict[str, Any] | None, accuracy_loss: dict[str, Any] | None) -> dict[str, Any]:
    """The risk a guaranteed policy controls, from its ``cost`` / ``accuracy_loss`` settings (at most one; neither:
    cost at ``δ = 0.05``): ``{"risk", "delta"}`` and, for accuracy loss, ``"epsilon"``, ``"loss"``."""
    if cost is not None and accuracy_loss is not None:
        raise ValueError("a guarantee controls either cost or accuracy_loss, not both")
    if accuracy_loss is not None:
        spec = {"risk": "accuracy_loss", "delta": 0.05, "epsilon": 0.01, "loss": "disagree", **dict(accuracy_loss)}
        allowed = {"risk", "delta", "epsilon", "loss"}
    else:
        spec = {"risk": "cost", "delta": 0.05, **dict(cost or {})}
        allowed = {"risk", "delta"}
    if set(spec) - allowed:
        raise ValueError(
            f"unknown guarantee settings {sorted(set(spec) - allowed)} for {spec['risk']}; known: {sorted(allowed - {'risk'})}"
        )
    if not 0 < float(spec["delta"]) < 1:
        raise ValueError(f"guarantee delta must be in (0, 1), got {spec['delta']}")
    if spec["risk"] == "accuracy_loss":
        if not 0 < float(spec["epsilon"]) < 1:
            raise ValueError(f"guarantee epsilon must be in (0, 1), got {spec['epsilon']}")
        if spec["loss"] not in LOSSES:
            raise ValueError(f"accuracy_loss loss must be one of {LOSSES}, got {spec['loss']!r}")
    return spec


# ---------------------------------------------------------------------------------------------------
# the policies


class GuaranteeMixin:
    """Learn-then-Test risk control around a threshold policy (see the module docstring).

    Fitted, besides the wrapped policy's attributes (``thresholds_`` = ``T(λ̂)``): ``guarantee_`` -- the risk, its
    target, ``δ``, the chosen ``λ``, its mean loss and upper bound on the calibration part, the certified range of
    ``λ`` and its cheapest setting's validation cost, the sizes of the two parts, the shape part's thresholds ``T*``.
    ``calibration``: how the settings are certified, ``ltt`` (the default), ``ucb`` or ``crc``
    (:mod:`~eenet.schedulers.riskcontrol`); ``bound``: the concentration bound of ``ltt`` and ``ucb``.
    """

    def __init__(
        self,
        cost: dict[str, Any] | None = None,
        accuracy_loss: dict[str, Any] | None = None,
        shape_fraction: float = 0.5,
        grid: int = 200,
        bound: str = "hoeffding_bentkus",
        calibration: str = "ltt",
        seed: int = 0,
    ) -> None:
        self.cost = cost
        self.accuracy_loss = accuracy_loss
        self.shape_fraction = shape_fraction
        self.grid = grid
        self.bound = bound
        self.calibration = calibration
        self.seed = seed
        guarantee_spec(cost, accuracy_loss)
        if bound not in BOUNDS:
            raise ValueError(f"unknown bound {bound!r}; known: {BOUNDS}")
        if calibration not in CALIBRATIONS:
            raise ValueError(f"unknown calibration {calibration!r}; known: {CALIBRATIONS}")
        if not 0 < shape_fraction < 1 or int(grid) < 2:
            raise ValueError(f"shape_fraction must be in (0, 1) and grid at least 2, got {shape_fraction}, {grid}")

    def _fit(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> None:
        spec = guarantee_spec(self.cost, self.accuracy_loss)
        n = probs.shape[1]
        if n < 2:
            raise ValueError("a guaranteed policy needs at least 2 validation samples (a shape and a calibration part)")
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(self.seed)))
        n_shape = min(n - 1, max(1, round(float(self.shape_fraction) * n)))
        shape, cal = perm[:n_shape], perm[n_shape:]
        super()._fit(probs[:, shape], labels[shape], costs)  # type: ignore[misc]  (the plain policy on the shape part)
        base = torch.tensor(self.thresholds_, dtype=torch.float64)  # type: ignore[has-type]
        lambdas = torch.linspace(-1.0, 1.0, int(self.grid), dtype=torch.float64)
        family = threshold_family(base, lambdas)
        scores = self.scores(probs)  # type: ignore[attr-defined]
        exits = family_exits(scores[:, cal], family)  # [G, Nc]
        c = costs.double()
        lo_c, hi_c = float(c.min()), float(c.max())
        if spec["risk"] == "cost":
            span = max(hi_c - lo_c, 1e-300)
            losses = (c[exits] - lo_c) / span
            target = min(1.0, (self.budget_ - lo_c) / span) if hi_c > lo_c else 1.0  # type: ignore[attr-defined]
            order = torch.arange(len(lambdas))  # from the cheapest setting up
        else:
            preds = probs.argmax(dim=2)[:, cal]  # [K, Nc]
            losses = lost_against_last(preds, preds.gather(0, exits), labels[cal], spec["loss"]).double()  # [G, Nc]
            target = float(spec["epsilon"])
            order = torch.arange(len(lambdas) - 1, -1, -1)  # from the last exit down
        n_cal = int(cal.numel())
        certified, sums = certify(losses, order, target, float(spec["delta"]), self.calibration, self.bound)
        name = f"{spec['risk']} within {target:.4g}" + (" of the range of exit costs" if spec["risk"] == "cost" else "")
        if not certified:
            raise InfeasibleBudgetError(
                f"no setting is certified by {self.calibration} at delta {spec['delta']} ({name}; {n_cal} calibration samples): "
                + ("even every sample at the cheapest exit" if spec["risk"] == "cost" else "even every sample at the last exit")
                + " has an upper bound above the target"
            )
        all_exits = family_exits(scores, family[certified])  # [len(certified), N], the whole validation set
        val_costs = c[all_exits].mean(dim=1)
        if spec["risk"] == "cost":
            pick = len(certified) - 1  # the costliest certified setting
        else:
            within = (val_costs <= self.budget_).nonzero().flatten()  # type: ignore[attr-defined]
            if within.numel() == 0:
                raise InfeasibleBudgetError(
                    f"budget {self.budget_:.6g} is below the validation cost of the cheapest setting certified for "  # type: ignore[attr-defined]
                    f"{spec['loss']} accuracy loss <= {target:.4g} at delta {spec['delta']} ({float(val_costs.min()):.6g})"
                )
            pick = int(within[0])  # certified runs from the last exit down: the first within the budget is the costliest
        j = certified[pick]
        risk = float(sums[j]) / n_cal
        self.thresholds_ = family[j].tolist()
        self._threshold_cache = {}
        cheapest = int(torch.argmin(val_costs))
        self.guarantee_ = {
            **spec, "target": target, "lambda": float(lambdas[j]), "calibration_risk": risk,
            "upper_bound": certified_bound(risk, n_cal, float(spec["delta"]), self.calibration, self.bound),
            "bound": self.bound, "calibration": self.calibration,
            "certified_lambda": [float(lambdas[certified].min()), float(lambdas[certified].max())],
            "cheapest_certified_val_cost": float(val_costs[cheapest]), "n_shape": n_shape, "n_calibration": n_cal,
            "shape_thresholds": base.tolist(), "shape_log_rho": self.log_rho_,  # type: ignore[has-type]
        }  # fmt: skip

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "params": self.get_params(), "guarantee": self.guarantee_}  # type: ignore[misc, attr-defined]

    def _load_state(self, state: dict[str, Any]) -> None:
        super()._load_state(state)  # type: ignore[misc]
        self.guarantee_ = dict(state["guarantee"])


class GeometricGuardScheduler(GuaranteeMixin, GeometricScheduler):
    """A score's geometric thresholds with a guarantee on cost or accuracy loss; registered once per score
    (``<score>_guard``) by :func:`~eenet.schedulers.threshold.per_score`."""


class TemperatureScaledGuardScheduler(GuaranteeMixin, TemperatureScaledScheduler):
    """A score's temperature-scaled thresholds (temperatures fitted on the shape part) with a guarantee; registered
    once per score (``<score>_ts_guard``) by :func:`~eenet.schedulers.threshold.per_score`."""


GUARDED = per_score(GeometricGuardScheduler, "{}_guard", "{}GuardScheduler", "{title}'s thresholds ({doc}) with a guarantee.")
"""Score -> its guaranteed policy: ``maxpred_guard``, ``entropy_guard``."""
TEMPERATURE_SCALED_GUARDED = per_score(
    TemperatureScaledGuardScheduler,
    "{}_ts_guard",
    "{}TSGuardScheduler",
    "Temperature-scaled {title} ({doc}; temperatures fitted on the shape part) with a guarantee.",
)
"""Score -> its temperature-scaled guaranteed policy: ``maxpred_ts_guard``, ``entropy_ts_guard``."""
MaxPredGuardScheduler, EntropyGuardScheduler = GUARDED["maxpred"], GUARDED["entropy"]
MaxPredTSGuardScheduler, EntropyTSGuardScheduler = TEMPERATURE_SCALED_GUARDED["maxpred"], TEMPERATURE_SCALED_GUARDED["entropy"]
