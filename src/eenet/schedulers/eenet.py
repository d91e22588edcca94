"""EENet: learned utility scores and exit assignment (Ilhan et al., WACV 2024), as implemented here.

Per exit ``k``: features ``x_k = [p_k, max p_k, 1 - H(p_k)/log C, u_0 .. u_{k-1}]`` (``C + 2 + k`` values);
utility ``u_k = σ(a_kᵀ x_k + b_k)`` (predicts "exit k is right"); assignment logit ``r_k = MLP_k(x_k)``
(one hidden layer of ``round(hidden_ratio · dim x_k)`` units); ``π = softmax(r)`` over exits.

Training on validation alternates every ``period`` epochs between the utility loss (BCE of ``u_k`` against
"exit k is right", weighted by the normalised, detached ``π``) and the assignment loss
``α_π · KL(t ‖ π) + α_B · |mean cost under π - B| / B`` with ``t ∝ u^β`` (detached). ``restarts``
independent fits train at once (parameters carry a leading restart axis ``R``); each keeps the state
with its best validation accuracy (its start included); the restart with the best accuracy within the budget
is chosen. Thresholds come from the learned mean distribution ``π̄`` (docs/eenet.md).

Never below MaxPred, the threshold policy EENet generalises (ours, not the paper's):

- ``maxpred_start``: one restart more, which starts at MaxPred's policy (``u_k`` a logistic function of
  ``max p_k``, ``π`` MaxPred's geometric distribution at this budget). The paper's random start is far from any
  good policy when the exits differ much in accuracy: with its learning rate (3e-5) the fit hardly moves from it
  and the budget projection sends the surplus of an untrained, near-uniform ``π̄`` to the cheapest, least
  accurate exit (8 exits: 70 % of the samples to a 35 %-accurate exit 0, 14 points below MaxPred); with a large
  one, BCE-fitted linear utilities rank worse than ``max p`` when the class-wise inputs carry little. Started at
  MaxPred, the restart keeps MaxPred's validation accuracy unless training beats it.
- ``holdout``: the fit is made on a seeded ``1 - holdout`` of validation and compared with MaxPred, fitted on the
  same samples, on the held-out rest at the same budget (the margin is logged every time). Below MaxPred, EENet
  falls back: it becomes MaxPred fitted on all of validation (``fallback_`` records why; a warning says so).
  Otherwise the thresholds of the checked fit are set anew on all of validation.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
from collections.abc import Sequence
from typing import Any

import torch

from eenet.schedulers.base import (
    ExitScheduler,
    InfeasibleBudgetError,
    assign_by_thresholds,
    realised_cost,
    register_method,
    search_budget,
    thresholds_for_distribution,
)
from eenet.schedulers.eenet_fit import EENetFitting, base_features, forward
from eenet.schedulers.search import choose_distribution
from eenet.schedulers.threshold import MaxPredScheduler

__all__ = ["EENetScheduler", "EENetGeometricScheduler", "EENetNoClassScheduler", "DISTRIBUTIONS"]

DISTRIBUTIONS = ("projection", "search", "geometric")
"""How EENet's exit distribution meets the budget (constructor argument ``distribution``)."""

log = logging.getLogger(__name__)


@register_method
class EENetScheduler(EENetFitting, ExitScheduler):
    """EENet's learned scheduler (see the module docstring for the model and the losses).

    With ``budget_projection`` (the default), the learned mean distribution ``π̄`` is moved along a line
    towards the cheapest (or costliest) exit until the realised validation cost is the largest within the
    budget; without it, thresholds come from ``π̄`` unchanged (the paper's rule) and restarts whose
    validation cost exceeds ``budget · (1 + budget_tolerance)`` are discarded.

    Fitted: ``weights_`` (per parameter name, one nested list per exit), ``thresholds_`` (``[K]``),
    ``report_`` (epochs run, chosen restart, mean exit distribution, every restart's validation result, the
    held-out check against MaxPred) and ``fallback_``: ``None``, or, when the fit was below MaxPred on held-out
    validation, the check's figures and MaxPred's ``log_rho``; then ``thresholds_`` are MaxPred's, fitted on all
    of validation, and every decision (:meth:`assign`, :meth:`leaves`, :meth:`leaves_one`) is MaxPred's.
    """

    method = "eenet"

    def __init__(
        self,
        hidden_ratio: float = 0.5,
        alpha_pi: float = 1e-3,
        alpha_b: float = 1e-2,
        beta: float = 1.0,
        period: int = 10,
        lr: float = 3e-5,
        weight_decay: float = 1e-2,
        batch_size: int = 512,
        epochs: int = 1000,
        patience: int = 100,
        restarts: int = 10,
        seed: int = 0,
        budget_tolerance: float = 0.0,
        budget_projection: bool = True,
        distribution: str = "projection",
        search_holdout: float = 0.5,
        class_inputs: bool = True,
        maxpred_start: bool = True,
        holdout: float = 0.2,
    ) -> None:
        if not 0 <= holdout < 1:
            raise ValueError(f"holdout must be in [0, 1), got {holdout!r}")
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
        self.hidden_ratio = hidden_ratio
        self.alpha_pi = alpha_pi
        self.alpha_b = alpha_b
        self.beta = beta
        self.period = period
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.restarts = restarts
        self.seed = seed
        self.budget_tolerance = budget_tolerance
        self.budget_projection = budget_projection
        self.distribution = distribution
        self.search_holdout = search_holdout
        self.class_inputs = class_inputs
        self.maxpred_start = maxpred_start
        self.holdout = holdout

    # -- parameters with a leading restart axis R ------------------------------------------------------
    def _fit(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> None:
        """EENet's fit, checked on held-out validation against MaxPred (:meth:`_check_against_maxpred`)."""
        self.fallback_ = None
        self.__dict__.pop("_maxpred_cache", None)
        n = probs.shape[1]
        if not float(self.holdout) > 0 or n < 2:
            self._fit_eenet(probs, labels, costs)
            return
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(self.seed)))
        n_out = max(1, min(n - 1, round(float(self.holdout) * n)))
        out, part = perm[:n_out].sort().values, perm[n_out:].sort().values
        try:
            self._fit_eenet(probs[:, part], labels[part], costs)
        except InfeasibleBudgetError as err:  # the paper's budget rule on fewer samples: no check, the full fit decides
            log.warning("EENet (budget %.6g): no check against MaxPred on held-out validation: %s", self.budget_, err)
            self._fit_eenet(probs, labels, costs)
            self.report_["holdout_check"] = {"skipped": str(err)}
            return
        check = self._check_against_maxpred(probs, labels, costs, part, out)
        if check["margin"] < 0:
            self._fall_back(probs, labels, costs, check)
            return
        # the checked fit is kept (refitted on all of validation, it would be a fit nobody checked, for twice the time
        # and no better on the synthetic 8-exit cases measured); its thresholds are set anew on all of validation
        try:
            self._set_thresholds(probs, labels, costs)
        except InfeasibleBudgetError:  # the paper's budget rule, over the budget on all of validation: fit on it
            self._fit_eenet(probs, labels, costs)
        self.report_["holdout_check"] = check

    def _fit_eenet(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> None:
        """EENet's own fit (no check) on these samples: ``weights_``, ``thresholds_``, ``report_``."""
        gen = torch.Generator().manual_seed(int(self.seed))
        k_exits = probs.shape[0]
        base = base_features(probs, self.class_inputs)  # [K, N, D0]
        correct = (probs.argmax(dim=2) == labels.view(1, -1)).float().T  # [N, K]
        c = (costs / costs.max()).float()  # costs in units of the full model
        b_rel = float(self.budget_ / costs.max())
        start = self._maxpred_start(probs, labels, costs) if self.maxpred_start else None
        p = self._init_params(k_exits, base.shape[2], gen, start)
        restarts = p["a"][0].shape[0]
        opts = (
            torch.optim.Adam(p["a"] + p["b"], lr=self.lr, weight_decay=self.weight_decay),
            torch.optim.Adam(p["w1"] + p["b1"] + p["w2"] + p["b2"], lr=self.lr, weight_decay=self.weight_decay),
        )
        best_acc = torch.full((restarts,), -1.0)
        best_p = {key: [t.detach().clone() for t in ts] for key, ts in p.items()}
        stale = torch.zeros(restarts, dtype=torch.long)
        self._keep_best(p, best_p, best_acc, stale, base, probs, labels, costs)  # the start is a candidate too
        stale.zero_()
        epochs_run = 0
        for epoch in range(int(self.epochs)):
            self._epoch(p, opts, base, correct, c, b_rel, (epoch // int(self.period)) % 2 == 0, gen)
            epochs_run = epoch + 1
            self._keep_best(p, best_p, best_acc, stale, base, probs, labels, costs)
            if bool((stale >= int(self.patience)).all()):
                break
        choice = self._choose_restart(best_p, base, probs, labels, costs)
        ri = choice["chosen"]["restart"]
        self.weights_ = {key: [t[ri].tolist() for t in ts] for key, ts in best_p.items()}
        self._weight_cache = None
        self.report_ = {
            "epochs_run": epochs_run,
            "chosen_restart": ri,
            "maxpred_start_restart": restarts - 1 if start is not None else None,
            "mean_exit_distribution": choice["pi_bar"].tolist(),
            "restarts": [{k: v for k, v in cand.items() if k != "thresholds"} for cand in choice["candidates"]],
        }
        # from the utilities as applied (one restart): computed with all the restarts at once, a utility can differ in
        # its last bit, and the sample whose utility is a threshold leave one exit later than counted
        self._set_thresholds(probs, labels, costs, check=False)

    def _set_thresholds(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor, check: bool = True) -> None:
        """The thresholds of the fitted utilities and mean exit distribution on these samples (``check``: that the
        paper's budget rule meets the budget on them; :meth:`_choose_restart` has checked its own)."""
        pi_bar = torch.tensor(self.report_["mean_exit_distribution"], dtype=torch.float64)
        th, ex = self._policy(self._utilities(probs), pi_bar, costs, exact=True)
        if check and not self.budget_projection and realised_cost(ex, costs) > self.budget_ * (1 + self.budget_tolerance):
            raise InfeasibleBudgetError(f"the EENet fit exceeds the budget {self.budget_:.6g} on all of validation")
        self.thresholds_ = th.tolist()
        self._set_distribution(probs, labels, costs)

    def _set_distribution(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> None:
        if self.distribution == "search":
            self._search_distribution(probs, labels, costs)
        elif self.distribution == "geometric":  # the ablation: learned utilities, MaxPred's family of distributions
            ks = torch.arange(probs.shape[0], dtype=torch.float64)
            _, th, _ = search_budget(self._utilities(probs), lambda t: torch.softmax(ks * t, dim=0), costs, self.budget_, -30.0, 30.0)
            self.thresholds_ = th.tolist()

    def _search_distribution(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> None:
        """Replace the projected distribution by one searched on validation for the learned utilities
        (:mod:`eenet.schedulers.search`), starting from the projected one's exit shares."""
        u = self._utilities(probs)
        exits = assign_by_thresholds(u, torch.tensor(self.thresholds_, dtype=torch.float32))
        n = exits.numel()
        q0 = (torch.bincount(exits, minlength=self.num_exits_).double() + 1e-6) / n
        q0 = q0 / q0.sum()
        correct = probs.argmax(dim=2) == labels.view(1, -1)
        q, report = choose_distribution(u, correct, costs, self.budget_, q0, float(self.search_holdout), int(self.seed))
        self.thresholds_ = thresholds_for_distribution(u, q).tolist()
        self.report_["distribution_search"] = report

    # -- applying it -------------------------------------------------------------------------------------
    def utilities(self, probs: torch.Tensor) -> torch.Tensor:
        """Utility scores ``u [K, N]`` of probabilities ``[K, N, C]``."""
        self._check_probs(probs)
        return self._utilities(probs)

    def _utilities(self, probs: torch.Tensor) -> torch.Tensor:
        """``u [k, N]`` of the first ``k`` exits' probabilities ``[k, N, C]`` (a utility reads earlier exits only)."""
        cache = getattr(self, "_weight_cache", None)
        if cache is None or cache[0] != probs.device:
            weights = {
                key: [torch.tensor(v, dtype=torch.float32, device=probs.device).unsqueeze(0) for v in vals]
                for key, vals in self.weights_.items()
            }
            self._weight_cache = cache = (probs.device, weights)
        with torch.no_grad():
            z, _ = forward(cache[1], base_features(probs.float(), self.class_inputs), assignment=False)
        return torch.sigmoid(z[0]).T

    def _maxpred(self) -> MaxPredScheduler | None:
        """After a fallback (``fallback_``), the MaxPred policy that decides; ``None`` otherwise."""
        if getattr(self, "fallback_", None) is None:
            return None
        mp = self.__dict__.get("_maxpred_cache")
        if mp is None:
            mp = MaxPredScheduler()
            for key in ("num_exits_", "num_classes_", "costs_", "budget_"):
                setattr(mp, key, getattr(self, key))
            mp.log_rho_, mp.thresholds_ = float(self.fallback_["log_rho"]), list(self.thresholds_)
            self.__dict__["_maxpred_cache"] = mp
        return mp

    @property
    def family(self) -> str:
        mp = self._maxpred()
        return super().family if mp is None else mp.family

    def assign(self, probs: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        mp = self._maxpred()
        if mp is not None:
            self._check_probs(probs)
            return mp.assign(probs)
        return assign_by_thresholds(self.utilities(probs), torch.tensor(self.thresholds_, dtype=torch.float32))

    def leaves(self, k: int, probs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        mp = self._maxpred()
        if mp is not None:
            return mp.leaves(k, probs)
        p = probs[k]
        if self._check_step(k, probs):
            return torch.ones(p.shape[0], dtype=torch.bool, device=p.device)
        stacked = probs if isinstance(probs, torch.Tensor) else torch.stack(list(probs))
        return self._utilities(stacked)[k] >= self._threshold(k, p.device)

    def leaves_one(self, k: int, probs: Sequence[torch.Tensor]) -> bool:
        """:meth:`leaves` for one sample, in Python floats: the utilities of exits ``0..k`` (each reads the earlier
        ones) cost a few microseconds this way, against ~100 of tensor operations on tensors this small. Computed in
        float64, a utility could decide otherwise than the float32 tensors of :meth:`assign` only within rounding of
        its threshold (a utility saturated at 1 is exactly 1 in float32): within 1e-5 of it, :meth:`leaves` decides."""
        mp = self._maxpred()
        if mp is not None:
            return mp.leaves_one(k, probs)
        if k == self.num_exits_ - 1:
            return True
        a, b = self.weights_["a"], self.weights_["b"]
        log_c = math.log(self.num_classes_)
        us: list[float] = []
        for j in range(k + 1):
            p = probs[j][0].float().tolist()
            negentropy = 1.0 + sum(q * math.log(max(q, 1e-12)) for q in p) / log_c
            feats = [*p, max(p), negentropy, *us] if self.class_inputs else [max(p), negentropy, *us]
            z = math.fsum(w * f for w, f in zip(a[j], feats, strict=True)) + b[j]
            us.append(1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z)))
        u, threshold = us[k], self.thresholds_[k]
        if abs(u - threshold) <= 1e-5 * max(1.0, abs(threshold)):
            return bool(self.leaves(k, probs)[0])  # too close to call in float64: the float32 tensors of assign() decide
        return u >= threshold

    def _state(self) -> dict[str, Any]:
        state = {"params": self.get_params(), "weights": self.weights_, "thresholds": self.thresholds_, "report": self.report_}
        return {**state, "fallback": self.fallback_}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.weights_ = copy.deepcopy(state["weights"])
        self._weight_cache = None
        self.thresholds_ = [float(t) for t in state["thresholds"]]
        self.report_ = dict(state.get("report", {}))
        self.fallback_ = copy.deepcopy(state.get("fallback"))  # files written before the check have none
        self.__dict__.pop("_maxpred_cache", None)
        expected = [(self.num_classes_ if self.class_inputs else 0) + 2 + k for k in range(self.num_exits_)]
        got = [len(a) for a in self.weights_["a"]]
        if got != expected:
            raise ValueError(
                f"EENet weights have feature sizes {got}, expected {expected} for {self.num_exits_} exits x {self.num_classes_} classes"
            )


def _variant(name: str, doc: str, **fixed: Any) -> type[EENetScheduler]:
    """An EENet ablation registered as its own method: the same constructor without the ``fixed`` arguments, which
    it always passes (so the benchmark's ``eenet:`` block configures every variant alike)."""
    sig = inspect.signature(EENetScheduler.__init__)
    own = sig.replace(parameters=[p for n, p in sig.parameters.items() if n not in fixed])

    def __init__(self: EENetScheduler, *args: Any, **kwargs: Any) -> None:
        bound = own.bind(self, *args, **kwargs)
        bound.apply_defaults()
        EENetScheduler.__init__(**bound.arguments, **fixed)

    __init__.__signature__ = own  # type: ignore[attr-defined]  (read by ExitScheduler.get_params)
    cls = type(f"EENet_{name}", (EENetScheduler,), {"method": name, "__init__": __init__, "__doc__": doc})
    return register_method(cls)


EENetGeometricScheduler = _variant(
    "eenet_geo", "Ablation: EENet's learned utilities with MaxPred's geometric exit distribution.", distribution="geometric"
)
EENetNoClassScheduler = _variant(
    "eenet_noclass", "Ablation: EENet without the class-wise inputs (utilities see max probability and entropy only).", class_inputs=False
)
