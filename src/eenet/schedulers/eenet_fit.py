"""EENet's fit, the part of :class:`eenet.schedulers.eenet.EENetScheduler` that trains: the utility network
(:func:`base_features`, :func:`forward`), its initialisation (random, or at MaxPred's policy), the alternating
epochs, the choice among restarts, and the check against MaxPred on held-out validation with its fallback. Shapes
and the method: :mod:`eenet.schedulers.eenet`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
import torch.nn.functional as F

from eenet.schedulers.base import (
    InfeasibleBudgetError,
    accuracy,
    assign_by_thresholds,
    exit_predictions,
    realised_cost,
    search_budget,
    thresholds_for_distribution,
)
from eenet.schedulers.scores import entropy_score, maxpred
from eenet.schedulers.threshold import MaxPredScheduler

__all__ = ["Params", "base_features", "forward", "EENetFitting"]

log = logging.getLogger("eenet.schedulers.eenet")

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


def _points(share: float | None) -> str:
    return "n/a" if share is None else f"{100 * share:.2f}"


class EENetFitting:
    """The training half of :class:`~eenet.schedulers.eenet.EENetScheduler` (a mixin: it reads the scheduler's
    hyper-parameters and fitted attributes)."""

    def _init_params(self, k_exits: int, d0: int, gen: torch.Generator, start: dict[str, torch.Tensor] | None = None) -> Params:
        """``restarts`` draws of the paper's uniform initialisation; with ``start`` (:meth:`_maxpred_start`) one more
        restart, the last, that begins at MaxPred's policy: ``u_k`` a logistic function of ``max p_k`` alone (the
        other weights of ``a_k`` zero) and, with ``w2 = 0``, assignment logits ``r`` constant at the log of MaxPred's
        geometric exit distribution (its ``w1``, ``b1`` drawn as the others', from a generator of its own). Restarts
        train independently, so the first ``restarts`` are the fits without it, draw for draw."""

        def uniform(shape: tuple[int, ...], fan_in: int, g: torch.Generator = gen) -> torch.Tensor:
            bound = 1.0 / math.sqrt(fan_in)
            return (torch.rand(shape, generator=g, dtype=torch.float32) * 2 - 1) * bound

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
        if start is not None:
            own = torch.Generator().manual_seed(int(self.seed) + 1)
            for k in range(k_exits):
                d = d0 + k
                h = max(1, round(self.hidden_ratio * d))
                a = torch.zeros(1, d)
                a[0, d0 - 2] = start["slope"][k]  # the max-probability feature
                extra = {
                    "a": a, "b": start["intercept"][k].view(1), "w1": uniform((1, d, h), d, own), "b1": uniform((1, h), d, own),
                    "w2": torch.zeros(1, h), "b2": start["log_q"][k].view(1),
                }  # fmt: skip
                for key, t in extra.items():
                    p[key][k] = torch.cat([p[key][k], t.float()])
        return {key: [t.requires_grad_() for t in ts] for key, ts in p.items()}

    def _maxpred_start(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> dict[str, torch.Tensor]:
        """MaxPred's policy in EENet's parameters: per exit, the logistic fit of "exit k is right" on ``max p_k``
        (slope kept positive, so that ``u_k`` ranks the samples as ``max p_k`` does) and MaxPred's geometric exit
        distribution at this budget (its log, as constant assignment logits)."""
        k_exits = probs.shape[0]
        x = maxpred(probs).double()  # [K, N]
        y = (probs.argmax(dim=2) == labels.view(1, -1)).double()  # [K, N]
        design = torch.stack([x, torch.ones_like(x)], dim=-1)  # [K, N, 2]
        ridge = 1e-4 * torch.eye(2, dtype=torch.float64)
        coef = torch.zeros(k_exits, 2, dtype=torch.float64)
        for _ in range(30):  # Newton's method on the (slightly ridged) mean log-loss, every exit at once
            mu = torch.sigmoid((design * coef.unsqueeze(1)).sum(-1))
            grad = (design * (mu - y).unsqueeze(-1)).mean(1) + coef @ ridge
            hess = torch.einsum("kni,knj->kij", design * (mu * (1 - mu)).unsqueeze(-1), design) / x.shape[1] + ridge
            coef = coef - torch.linalg.solve(hess, grad.unsqueeze(-1)).squeeze(-1)
        # a floor of 0.25 per standard deviation of max p: an uninformative max p (slope ~0) would give utilities
        # equal to float32 precision, and ties that float32 sums in another order (a batch of one) break otherwise
        slope = torch.maximum(coef[:, 0], 0.25 / x.std(dim=1).clamp_min(1e-6)).clamp_max(1e4)
        intercept = torch.logit(y.mean(1).clamp(1e-3, 1 - 1e-3)) - slope * x.mean(1)  # for a slope set here
        intercept = torch.where(slope == coef[:, 0], coef[:, 1], intercept)
        geo = MaxPredScheduler().fit(probs, labels, costs, self.budget_)
        log_q = torch.log_softmax(torch.arange(k_exits, dtype=torch.float64) * geo.log_rho_, dim=0).clamp_min(-30.0)
        return {"slope": slope.float(), "intercept": intercept.float(), "log_q": log_q.float()}

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
            for ri in range(u_all.shape[0]):
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
            for ri in range(u_all.shape[0]):
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

    def _check_against_maxpred(
        self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor, part: torch.Tensor, out: torch.Tensor
    ) -> dict[str, Any]:
        """Accuracy on the held-out samples ``out`` of this fit and of MaxPred's, both fitted on ``part``."""
        maxpred_part = MaxPredScheduler().fit(probs[:, part], labels[part], costs, self.budget_)
        held = probs[:, out]
        right_e = exit_predictions(held, self.assign(held)) == labels[out]
        right_m = exit_predictions(held, maxpred_part.assign(held)) == labels[out]
        diff = right_e.double() - right_m.double()
        check = {
            "holdout": float(self.holdout),
            "samples": int(out.numel()),
            "heldout_accuracy": float(right_e.double().mean()),
            "heldout_accuracy_maxpred": float(right_m.double().mean()),
            "margin": float(diff.mean()),
            "margin_se": float(diff.std() / math.sqrt(diff.numel())) if diff.numel() > 1 else None,  # paired
        }
        log.info(
            "EENet (budget %.6g): held-out margin over MaxPred %+.2f points (standard error %s; %d held-out validation "
            "samples: %.2f%% vs %.2f%%)", self.budget_, 100 * check["margin"], _points(check["margin_se"]),
            check["samples"], 100 * check["heldout_accuracy"], 100 * check["heldout_accuracy_maxpred"],
        )  # fmt: skip
        return check

    def _fall_back(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor, check: dict[str, Any]) -> None:
        """Become MaxPred fitted on all of validation (the learned weights stay, for the record, unused)."""
        mp = MaxPredScheduler().fit(probs, labels, costs, self.budget_)
        self.thresholds_ = [float(t) for t in mp.thresholds_]
        self.fallback_ = {"policy": "maxpred", "log_rho": mp.log_rho_, **check}
        self.report_["holdout_check"] = check
        log.warning(
            "EENet (budget %.6g) is below MaxPred on %d held-out validation samples (%.2f%% vs %.2f%%, margin %+.2f points, "
            "standard error %s): it falls back to MaxPred's thresholds fitted on all of validation (fallback_ in its "
            "state). Little validation data makes this comparison, and EENet's fit, noisy.", self.budget_, check["samples"],
            100 * check["heldout_accuracy"], 100 * check["heldout_accuracy_maxpred"], 100 * check["margin"],
            _points(check["margin_se"]),
        )  # fmt: skip
