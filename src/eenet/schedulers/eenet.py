"""EENet: learned utility scores and exit assignment (Ilhan et al., WACV 2024), as implemented here.

Per exit ``k``: features ``x_k = [p_k, max p_k, 1 - H(p_k)/log C, u_0 .. u_{k-1}]`` (``C + 2 + k`` values);
utility ``u_k = σ(a_kᵀ x_k + b_k)`` (predicts "exit k is right"); assignment logit ``r_k = MLP_k(x_k)``
(one hidden layer of ``round(hidden_ratio · dim x_k)`` units); ``π = softmax(r)`` over exits.

Training on validation alternates every ``period`` epochs between the utility loss (BCE of ``u_k`` against
"exit k is right", weighted by the normalised, detached ``π``) and the assignment loss
``α_π · KL(t ‖ π) + α_B · |mean cost under π - B| / B`` with ``t ∝ u^β`` (detached). ``restarts``
independent fits train at once (parameters carry a leading restart axis ``R``); each keeps the state
with its best validation accuracy; the restart with the best accuracy within the budget is chosen.
Thresholds come from the learned mean distribution ``π̄`` (docs/eenet.md).
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from eenet.schedulers.base import (
    ExitScheduler,
    InfeasibleBudgetError,
    accuracy,
    assign_by_thresholds,
    realised_cost,
    register_method,
    search_budget,
    thresholds_for_distribution,
)
from eenet.schedulers.scores import entropy_score, maxpred
from eenet.schedulers.search import choose_distribution

__all__ = ["EENetScheduler", "EENetGeometricScheduler", "EENetNoClassScheduler", "DISTRIBUTIONS"]

DISTRIBUTIONS = ("projection", "search", "geometric")
"""How EENet's exit distribution meets the budget (constructor argument ``distribution``)."""

Params = dict[str, list[torch.Tensor]]  # name -> one tensor per exit, each with a leading restart axis R


def base_features(probs: torch.Tensor, class_inputs: bool = True) -> torch.Tensor:
    """``[K, N, C]`` -> ``[K, N, C + 2]``: class scores, max score, normalised negentropy (``[K, N, 2]``, the last
    two only, without ``class_inputs``: the ablation that sees no class-wise scores)."""
    summary = [maxpred(probs).unsqueeze(-1), entropy_score(probs).unsqueeze(-1)]
    return torch.cat([probs, *summary] if class_inputs else summary, dim=-1)


def forward(p: Params, base: torch.Tensor, assignment: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``base [K, N, D0]`` -> utility logits ``z [R, N, K]`` and assignment logits ``r [R, N, K]`` (``None``
    without ``assignment``: inference reads the utilities only)."""
    k_exits, n, _ = base.shape
    r_count = p["a"][0].shape[0]
    zs, rs, us = [], [], []
    for k in range(k_exits):
        x = base[k].unsqueeze(0).expand(r_count, n, -1)
        if us:
            x = torch.cat([x, torch.stack(us, dim=-1)], dim=-1)  # [R, N, D0 + k]
        z = torch.einsum("rnd,rd->rn", x, p["a"][k]) + p["b"][k].unsqueeze(1)
        zs.append(z)
        us.append(torch.sigmoid(z))
        if assignment:
            hidden = torch.relu(torch.einsum("rnd,rdh->rnh", x, p["w1"][k]) + p["b1"][k].unsqueeze(1))
            rs.append(torch.einsum("rnh,rh->rn", hidden, p["w2"][k]) + p["b2"][k].unsqueeze(1))
    return torch.stack(zs, dim=-1), (torch.stack(rs, dim=-1) if assignment else None)


@register_method
class EENetScheduler(ExitScheduler):
    """EENet's learned scheduler (see the module docstring for the model and the losses).

    With ``budget_projection`` (the default), the learned mean distribution ``π̄`` is moved along a line
    towards the cheapest (or costliest) exit until the realised validation cost is the largest within the
    budget; without it, thresholds come from ``π̄`` unchanged (the paper's rule) and restarts whose
    validation cost exceeds ``budget · (1 + budget_tolerance)`` are discarded.

    Fitted: ``weights_`` (per parameter name, one nested list per exit), ``thresholds_`` (``[K]``) and
    ``report_`` (epochs run, chosen restart, mean exit distribution, every restart's validation result).
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
    ) -> None:
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

    # -- parameters with a leading restart axis R ------------------------------------------------------
    def _init_params(self, k_exits: int, d0: int, gen: torch.Generator) -> Params:
        def uniform(shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
            bound = 1.0 / math.sqrt(fan_in)
            return ((torch.rand(shape, generator=gen, dtype=torch.float32) * 2 - 1) * bound).requires_grad_()

        r = int(self.restarts)
        p: Params = {"a": [], "b": [], "w1": [], "b1": [], "w2": [], "b2": []}
        for k in range(k_exits):
            d = d0 + k
            h = max(1, round(self.hidden_ratio * d))
            p["a"].append(uniform((r, d), d))
            p["b"].append(uniform((r,), d))
            p["w1"].append(uniform((r, d, h), d))
            p["b1"].append(uniform((r, h), d))
            p["w2"].append(uniform((r, h), h))
            p["b2"].append(uniform((r,), h))
        return p

    # -- from utilities and a mean distribution to thresholds ---------------------------------------------
    def _projected_distribution(self, pi_bar: torch.Tensor, costs: torch.Tensor, t: float) -> torch.Tensor:
        """Move ``pi_bar`` towards the cheapest exit (``t < 0``) or the costliest (``t > 0``); ``|t| <= 1``."""
        target = torch.zeros_like(pi_bar)
        target[int(costs.argmin()) if t < 0 else int(costs.argmax())] = 1.0
        return (1 - abs(t)) * pi_bar + abs(t) * target

    def _closed_form_t(self, pi_bar: torch.Tensor, costs: torch.Tensor) -> float:
        """The ``t`` whose projected distribution has an *expected* cost equal to the budget."""
        expected = float(pi_bar @ costs)
        if expected > self.budget_:
            return -min(1.0, (expected - self.budget_) / max(expected - float(costs.min()), 1e-12))
        return min(1.0, (self.budget_ - expected) / max(float(costs.max()) - expected, 1e-12))

    def _policy(self, u: torch.Tensor, pi_bar: torch.Tensor, costs: torch.Tensor, exact: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Thresholds ``[K]`` and validation exits ``[N]`` for utilities ``u [K, N]`` and ``pi_bar [K]``.

        ``exact``: search the projection for the realised cost (slow, once at the end); otherwise use the
        closed form for the expected cost (every epoch).
        """
        if not self.budget_projection:
            th = thresholds_for_distribution(u, pi_bar)
            return th, assign_by_thresholds(u, th)
        if exact:
            _, th, ex = search_budget(u, lambda t: self._projected_distribution(pi_bar, costs, t), costs, self.budget_, -1.0, 1.0)
            return th, ex
        th = thresholds_for_distribution(u, self._projected_distribution(pi_bar, costs, self._closed_form_t(pi_bar, costs)))
        return th, assign_by_thresholds(u, th)

    # -- training ----------------------------------------------------------------------------------------
    def _epoch(
        self, p: Params, opts: tuple[torch.optim.Optimizer, torch.optim.Optimizer], base: torch.Tensor, correct: torch.Tensor,
        c: torch.Tensor, b_rel: float, utility_phase: bool, gen: torch.Generator,
    ) -> None:  # fmt: skip
        """One pass over shuffled mini-batches of ``base [K, N, D0]`` (``correct [N, K]``, relative costs ``c [K]``)."""
        opt_u, opt_pi = opts
        n = base.shape[1]
        for idx in torch.randperm(n, generator=gen).split(int(self.batch_size)):
            z, r = forward(p, base[:, idx])
            u = torch.sigmoid(z)
            pi = F.softmax(r, dim=-1)  # [R, B, K]
            if utility_phase:
                w = pi.detach() / pi.detach().sum(dim=1, keepdim=True).clamp_min(1e-12)
                bce = F.binary_cross_entropy_with_logits(z, correct[idx].unsqueeze(0).expand_as(z), reduction="none")
                loss = (w * bce).sum(dim=1).mean(dim=-1).sum()
                opt = opt_u
            else:
                ub = u.detach().clamp_min(1e-6) ** self.beta
                t = ub / ub.sum(dim=-1, keepdim=True)
                l_pi = (t * (torch.log(t.clamp_min(1e-12)) - F.log_softmax(r, dim=-1))).sum(-1).mean(-1)
                l_b = ((pi * c).sum(-1).mean(-1) - b_rel).abs() / b_rel
                loss = (self.alpha_pi * l_pi + self.alpha_b * l_b).sum()
                opt = opt_pi
            opt_u.zero_grad(set_to_none=True)
            opt_pi.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def _keep_best(
        self, p: Params, best_p: Params, best_acc: torch.Tensor, stale: torch.Tensor, base: torch.Tensor, probs: torch.Tensor,
        labels: torch.Tensor, costs: torch.Tensor,
    ) -> None:  # fmt: skip
        """Copy every restart's state into ``best_p`` when its validation accuracy within the budget improved."""
        limit = self.budget_ * (1 + self.budget_tolerance)
        with torch.no_grad():
            z, r = forward(p, base)
            u_all, pi_bar = torch.sigmoid(z), F.softmax(r, dim=-1).mean(dim=1)  # [R, N, K], [R, K]
            for ri in range(int(self.restarts)):
                _, ex = self._policy(u_all[ri].T, pi_bar[ri].double(), costs, exact=False)
                acc = accuracy(probs, labels, ex)
                # with projection the final exact search enforces the budget; without it, check it here
                fits = self.budget_projection or realised_cost(ex, costs) <= limit
                if fits and acc > best_acc[ri]:
                    best_acc[ri] = acc
                    stale[ri] = 0
                    for key in p:
                        for bt, t_ in zip(best_p[key], p[key], strict=True):
                            bt[ri] = t_.detach()[ri]
                else:
                    stale[ri] += 1

    def _choose_restart(self, best_p: Params, base: torch.Tensor, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> dict:
        """The restart with the best validation accuracy within the budget, under the exact budget rule."""
        limit = self.budget_ * (1 + self.budget_tolerance)
        with torch.no_grad():
            z, r = forward(best_p, base)
            u_all, pi_bar = torch.sigmoid(z), F.softmax(r, dim=-1).mean(dim=1)
            candidates = []
            for ri in range(int(self.restarts)):
                try:
                    th, ex = self._policy(u_all[ri].T, pi_bar[ri].double(), costs, exact=True)
                except InfeasibleBudgetError:
                    continue
                cost = realised_cost(ex, costs)
                acc = accuracy(probs, labels, ex)
                candidates.append(
                    {"restart": ri, "val_accuracy": acc, "val_cost": cost, "thresholds": th.tolist(), "within": cost <= limit}
                )
        within = [cand for cand in candidates if cand["within"]]
        if not within:
            raise InfeasibleBudgetError(
                f"no EENet restart met the budget {self.budget_:.6g} on validation (tolerance {self.budget_tolerance})"
            )
        chosen = max(within, key=lambda cand: (cand["val_accuracy"], -cand["restart"]))
        return {"chosen": chosen, "candidates": candidates, "pi_bar": pi_bar[chosen["restart"]]}

    def _fit(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> None:
        gen = torch.Generator().manual_seed(int(self.seed))
        k_exits = probs.shape[0]
        base = base_features(probs, self.class_inputs)  # [K, N, D0]
        correct = (probs.argmax(dim=2) == labels.view(1, -1)).float().T  # [N, K]
        c = (costs / costs.max()).float()  # costs in units of the full model
        b_rel = float(self.budget_ / costs.max())
        restarts = int(self.restarts)
        p = self._init_params(k_exits, base.shape[2], gen)
        opts = (
            torch.optim.Adam(p["a"] + p["b"], lr=self.lr, weight_decay=self.weight_decay),
            torch.optim.Adam(p["w1"] + p["b1"] + p["w2"] + p["b2"], lr=self.lr, weight_decay=self.weight_decay),
        )
        best_acc = torch.full((restarts,), -1.0)
        best_p = {key: [t.detach().clone() for t in ts] for key, ts in p.items()}
        stale = torch.zeros(restarts, dtype=torch.long)
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
        self.thresholds_ = choice["chosen"]["thresholds"]
        self.report_ = {
            "epochs_run": epochs_run,
            "chosen_restart": ri,
            "mean_exit_distribution": choice["pi_bar"].tolist(),
            "restarts": [{k: v for k, v in cand.items() if k != "thresholds"} for cand in choice["candidates"]],
        }
        if self.distribution == "search":
            self._search_distribution(probs, labels, costs)
        elif self.distribution == "geometric":  # the ablation: learned utilities, MaxPred's family of distributions
            ks = torch.arange(k_exits, dtype=torch.float64)
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

    def assign(self, probs: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return assign_by_thresholds(self.utilities(probs), torch.tensor(self.thresholds_, dtype=torch.float32))

    def leaves(self, k: int, probs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
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
        return {"params": self.get_params(), "weights": self.weights_, "thresholds": self.thresholds_, "report": self.report_}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.weights_ = copy.deepcopy(state["weights"])
        self._weight_cache = None
        self.thresholds_ = [float(t) for t in state["thresholds"]]
        self.report_ = dict(state.get("report", {}))
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
