"""Exit schedulers: policies that decide, per sample, at which exit a multi-exit network stops.

Every policy follows one small scikit-learn-like interface::

    sched = make_scheduler("eenet", **params).fit(val_probs, val_labels, costs, budget)
    exits = sched.assign(test_probs)            # int64 [N], the exit index of every sample
    sched2 = scheduler_from_json(sched.to_json())

Shapes: ``probs`` is the softmax of every exit, ``float [K, N, C]``; ``labels`` ``int64 [N]``;
``costs`` the cumulative cost to reach each exit, ``[K]`` (ms per sample); ``budget`` the allowed
average cost per sample, same unit. ``fit`` only ever sees validation data.

Threshold policies (``maxpred``, ``entropy``, ``eenet``) turn a target exit distribution ``q`` into
thresholds the way MSDNet and EENet do: ``n_k = floor(q_k N)`` (the last exit takes the rest) and,
exit by exit, ``T_k`` is the ``n_k``-th largest score among samples not yet assigned. A sample leaves
at the first exit whose score reaches its threshold.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from .scores import SCORES, entropy_score, maxpred

__all__ = [
    "InfeasibleBudgetError",
    "ExitScheduler",
    "GeometricScheduler",
    "EENetScheduler",
    "OracleScheduler",
    "StaticScheduler",
    "thresholds_for_distribution",
    "assign_by_thresholds",
    "realised_cost",
    "accuracy",
    "apply_policy",
    "make_scheduler",
    "scheduler_from_json",
    "METHODS",
]

FORMAT_VERSION = 1


class InfeasibleBudgetError(ValueError):
    """The budget is below the cheapest exit's cost: no policy can meet it."""


# ---------------------------------------------------------------------------------------------------
# shared pieces


def thresholds_for_distribution(scores: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Thresholds ``[K]`` that send a fraction ~``q_k`` of the samples to exit ``k``.

    Args:
        scores: ``[K, N]``, higher = more confident at that exit.
        q: ``[K]``, non-negative, sums to 1.
    Returns:
        ``T [K]`` with ``T[K-1] = -inf`` (every remaining sample exits at the last exit);
        ``+inf`` for an exit that receives no sample.
    """
    k_exits, n = scores.shape
    counts = torch.floor(q.double().clamp_min(0) * n).long()
    thresholds = torch.full((k_exits,), math.inf, dtype=scores.dtype)
    thresholds[-1] = -math.inf
    remaining = torch.ones(n, dtype=torch.bool)
    for k in range(k_exits - 1):
        pool = scores[k][remaining]
        m = int(min(counts[k].item(), pool.numel()))
        if m > 0:
            thresholds[k] = torch.topk(pool, m).values[-1]
            remaining &= scores[k] < thresholds[k]
    return thresholds


def assign_by_thresholds(scores: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """First exit ``k`` with ``scores[k] >= thresholds[k]``: ``[K, N], [K] -> int64 [N]``."""
    passed = scores >= thresholds.view(-1, 1)
    passed[-1] = True
    return passed.long().argmax(dim=0)


def realised_cost(exits: torch.Tensor, costs: torch.Tensor) -> float:
    """Mean cost per sample of an assignment: ``exits int64 [N]``, ``costs [K]``."""
    return float(costs.double()[exits].mean())


def accuracy(probs: torch.Tensor, labels: torch.Tensor, exits: torch.Tensor) -> float:
    """Accuracy when sample ``n`` is classified by exit ``exits[n]``: ``[K, N, C], [N], [N]``."""
    preds = probs.argmax(dim=2).gather(0, exits.view(1, -1)).squeeze(0)
    return float((preds == labels).double().mean())


def apply_policy(sched: ExitScheduler, probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Exit of every sample under a fitted policy; only the oracle looks at ``labels``. ``[K, N, C], [N] -> [N]``."""
    return sched.assign(probs, labels) if isinstance(sched, OracleScheduler) else sched.assign(probs)


def _as_tensor(x: Any, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return x.to(dtype) if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=dtype)


def _search_budget(
    scores: torch.Tensor, family: Callable[[float], torch.Tensor], costs: torch.Tensor, budget: float, lo: float, hi: float, iters: int = 50
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Largest ``t`` in ``[lo, hi]`` whose distribution ``family(t)`` has realised validation cost <= budget.

    ``family`` must move mass towards costlier exits as ``t`` grows. Returns ``(t, thresholds, exits)``.
    """

    def evaluate(t: float) -> tuple[float, torch.Tensor, torch.Tensor]:
        th = thresholds_for_distribution(scores, family(t))
        ex = assign_by_thresholds(scores, th)
        return realised_cost(ex, costs), th, ex

    cost_hi, th_hi, ex_hi = evaluate(hi)
    if cost_hi <= budget:
        return hi, th_hi, ex_hi
    cost_lo, th_lo, ex_lo = evaluate(lo)
    if cost_lo > budget:
        raise InfeasibleBudgetError(f"budget {budget:.6g} is below the lowest cost this policy can reach on validation ({cost_lo:.6g})")
    best = (lo, th_lo, ex_lo)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        cost, th, ex = evaluate(mid)
        if cost <= budget:
            lo, best = mid, (mid, th, ex)
        else:
            hi = mid
    return best


def _check_budget(costs: torch.Tensor, budget: float) -> None:
    if not math.isfinite(budget) or budget <= 0:
        raise InfeasibleBudgetError(f"budget must be a positive number, got {budget}")
    if budget < float(costs.min()):
        raise InfeasibleBudgetError(
            f"budget {budget:.6g} is below the cost of the cheapest exit ({float(costs.min()):.6g}): no policy can meet it"
        )


# ---------------------------------------------------------------------------------------------------
# the interface


class ExitScheduler:
    """Base class. Subclasses implement :meth:`_fit`, :meth:`assign` and the JSON state."""

    method: ClassVar[str] = ""

    def __init__(self) -> None:
        self.num_exits: int | None = None
        self.num_classes: int | None = None
        self.costs: list[float] | None = None
        self.budget: float | None = None
        self.val_cost: float | None = None
        self.val_accuracy: float | None = None

    # -- fitting -------------------------------------------------------------------------------------
    def fit(self, probs: torch.Tensor, labels: torch.Tensor, costs: Any, budget: float) -> ExitScheduler:
        """Fit on validation ``probs [K, N, C]``, ``labels [N]``, ``costs [K]``, ``budget`` (same unit)."""
        costs_t = _as_tensor(costs)
        if probs.dim() != 3 or costs_t.numel() != probs.shape[0] or labels.shape[0] != probs.shape[1]:
            raise ValueError(
                f"shapes do not agree: probs {tuple(probs.shape)} (want [K, N, C]), "
                f"labels {tuple(labels.shape)}, costs {tuple(costs_t.shape)}"
            )
        _check_budget(costs_t, float(budget))
        self.num_exits, self.num_classes = int(probs.shape[0]), int(probs.shape[2])
        self.costs = [float(c) for c in costs_t]
        self.budget = float(budget)
        self._fit(probs.float(), labels.long(), costs_t)
        exits = apply_policy(self, probs, labels)
        self.val_cost = realised_cost(exits, costs_t)
        self.val_accuracy = accuracy(probs, labels, exits)
        return self

    def _fit(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> None:
        raise NotImplementedError

    def assign(self, probs: torch.Tensor) -> torch.Tensor:
        """Exit index of every sample: ``[K, N, C] -> int64 [N]``."""
        raise NotImplementedError

    def _check_probs(self, probs: torch.Tensor) -> None:
        if self.num_exits is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted")
        if probs.dim() != 3 or probs.shape[0] != self.num_exits or probs.shape[2] != self.num_classes:
            raise ValueError(
                f"{self.method} scheduler was fitted for {self.num_exits} exits x {self.num_classes} classes, "
                f"got probabilities of shape {tuple(probs.shape)} ([K, N, C])"
            )

    # -- JSON ----------------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {}

    def _load_state(self, state: dict[str, Any]) -> None:
        pass

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict that :func:`scheduler_from_json` turns back into this scheduler."""
        if self.num_exits is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted")
        return {
            "format_version": FORMAT_VERSION,
            "method": self.method,
            "num_exits": self.num_exits,
            "num_classes": self.num_classes,
            "costs": self.costs,
            "budget": self.budget,
            "val_cost": self.val_cost,
            "val_accuracy": self.val_accuracy,
            "state": self._state(),
        }

    @classmethod
    def _from_json(cls, d: dict[str, Any]) -> ExitScheduler:
        obj = cls.__new__(cls)
        ExitScheduler.__init__(obj)
        for key in ("num_exits", "num_classes", "costs", "budget", "val_cost", "val_accuracy"):
            setattr(obj, key, d[key])
        obj._load_state(d["state"])
        return obj


class StaticScheduler(ExitScheduler):
    """Every sample leaves at exit ``exit_index`` (a reference point, not a budgeted policy)."""

    method = "static"

    def __init__(self, exit_index: int = 0) -> None:
        super().__init__()
        self.exit_index = exit_index

    def _fit(self, probs, labels, costs) -> None:
        if not 0 <= self.exit_index < self.num_exits:
            raise ValueError(f"exit_index {self.exit_index} out of range for {self.num_exits} exits")

    def assign(self, probs: torch.Tensor) -> torch.Tensor:
        self._check_probs(probs)
        return torch.full((probs.shape[1],), self.exit_index, dtype=torch.long)

    def _state(self) -> dict[str, Any]:
        return {"exit_index": self.exit_index}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.exit_index = int(state["exit_index"])


class GeometricScheduler(ExitScheduler):
    """A confidence score + a geometric exit distribution ``q_k ∝ ρ^k`` (MSDNet / BranchyNet).

    ``ρ`` is searched (bisection on ``log ρ``) so that the realised validation cost is the largest
    that does not exceed the budget.
    """

    method = "geometric"

    def __init__(self, score: str = "maxpred") -> None:
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"unknown score {score!r}; known: {sorted(SCORES)}")
        self.score = score
        self.log_rho: float | None = None
        self.thresholds: list[float] | None = None

    @property
    def exit_distribution(self) -> list[float]:
        return F.softmax(torch.arange(self.num_exits, dtype=torch.float64) * self.log_rho, dim=0).tolist()

    def _fit(self, probs, labels, costs) -> None:
        scores = SCORES[self.score](probs)
        ks = torch.arange(self.num_exits, dtype=torch.float64)
        log_rho, th, _ = _search_budget(scores, lambda t: F.softmax(ks * t, dim=0), costs, self.budget, -30.0, 30.0)
        self.log_rho = float(log_rho)
        self.thresholds = th.tolist()

    def assign(self, probs: torch.Tensor) -> torch.Tensor:
        self._check_probs(probs)
        return assign_by_thresholds(SCORES[self.score](probs.float()), torch.tensor(self.thresholds))

    def _state(self) -> dict[str, Any]:
        return {"score": self.score, "log_rho": self.log_rho, "thresholds": self.thresholds, "exit_distribution": self.exit_distribution}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.score, self.log_rho, self.thresholds = state["score"], state["log_rho"], [float(t) for t in state["thresholds"]]


class MaxPredScheduler(GeometricScheduler):
    """MSDNet: max class probability + geometric exit distribution."""

    method = "maxpred"

    def __init__(self) -> None:
        super().__init__(score="maxpred")


class EntropyScheduler(GeometricScheduler):
    """BranchyNet: ``1 - H(p)/log C`` + geometric exit distribution."""

    method = "entropy"

    def __init__(self) -> None:
        super().__init__(score="entropy")


class OracleScheduler(ExitScheduler):
    """The exact upper bound at a budget, computed with the labels of the data it is applied to.

    Every sample pays the cheapest exit's cost; sample ``n`` can be made correct for the extra cost of
    its cheapest correct exit; extras are taken in ascending order while the average stays within the
    budget (greedy is optimal: every sample is worth the same). No policy on the same probabilities
    and costs reaches a higher accuracy at that average cost.
    """

    method = "oracle"

    def _fit(self, probs, labels, costs) -> None:
        pass

    def assign(self, probs: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        """Exit of every sample (needs ``labels [N]``: the oracle looks at the answers)."""
        self._check_probs(probs)
        if labels is None:
            raise ValueError("the oracle needs the labels of the samples it assigns")
        costs = torch.tensor(self.costs, dtype=torch.float64)
        n = probs.shape[1]
        correct = probs.argmax(dim=2) == labels.view(1, -1)  # [K, N]
        cheapest = int(costs.argmin())
        masked = torch.where(correct, costs.view(-1, 1).expand_as(correct), torch.full_like(correct, math.inf, dtype=torch.float64))
        best_cost, best_exit = masked.min(dim=0)
        extra = best_cost - costs[cheapest]  # +inf where no exit is correct
        exits = torch.full((n,), cheapest, dtype=torch.long)
        allowance = self.budget * n - float(costs[cheapest]) * n
        order = torch.argsort(extra, stable=True)
        spent = torch.cumsum(extra[order], dim=0)
        take = order[(spent <= allowance + 1e-9) & torch.isfinite(extra[order])]
        exits[take] = best_exit[take]
        return exits

    def _state(self) -> dict[str, Any]:
        return {}


class EENetScheduler(ExitScheduler):
    """EENet: learned utility scores and exit assignment (Ilhan et al., WACV 2024), as in DESIGN.md.

    Per exit ``k``: features ``x_k = [p_k, max p_k, 1 - H(p_k)/log C, u_0 .. u_{k-1}]``;
    utility ``u_k = σ(a_kᵀ x_k + b_k)``; assignment logit ``r_k = MLP_k(x_k)``; ``π = softmax(r)``.
    ``restarts`` independent fits are trained at once (parameters carry a leading restart axis);
    the one with the best validation accuracy among those within the budget is kept.

    With ``budget_projection`` (the default), the learned mean distribution ``π̄`` is moved along a
    line towards the cheapest (or costliest) exit until the realised validation cost is the largest
    within the budget; without it, thresholds come from ``π̄`` unchanged (the paper's rule).
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
    ) -> None:
        super().__init__()
        self.params = dict(
            hidden_ratio=hidden_ratio, alpha_pi=alpha_pi, alpha_b=alpha_b, beta=beta, period=period, lr=lr,
            weight_decay=weight_decay, batch_size=batch_size, epochs=epochs, patience=patience, restarts=restarts,
            seed=seed, budget_tolerance=budget_tolerance, budget_projection=budget_projection,
        )  # fmt: skip
        self.weights: dict[str, list] | None = None
        self.thresholds: list[float] | None = None
        self.report: dict[str, Any] = {}

    # -- the model: parameters with a leading restart axis R -----------------------------------------
    @staticmethod
    def _base_features(probs: torch.Tensor) -> torch.Tensor:
        """``[K, N, C]`` -> ``[K, N, C + 2]``: class scores, max score, normalised negentropy."""
        return torch.cat([probs, maxpred(probs).unsqueeze(-1), entropy_score(probs).unsqueeze(-1)], dim=-1)

    def _init_params(self, k_exits: int, d0: int, restarts: int, gen: torch.Generator) -> dict[str, list[torch.Tensor]]:
        def uniform(shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
            bound = 1.0 / math.sqrt(fan_in)
            return ((torch.rand(shape, generator=gen, dtype=torch.float32) * 2 - 1) * bound).requires_grad_()

        p: dict[str, list[torch.Tensor]] = {"a": [], "b": [], "w1": [], "b1": [], "w2": [], "b2": []}
        for k in range(k_exits):
            d = d0 + k
            h = max(1, round(self.params["hidden_ratio"] * d))
            p["a"].append(uniform((restarts, d), d))
            p["b"].append(uniform((restarts,), d))
            p["w1"].append(uniform((restarts, d, h), d))
            p["b1"].append(uniform((restarts, h), d))
            p["w2"].append(uniform((restarts, h), h))
            p["b2"].append(uniform((restarts,), h))
        return p

    @staticmethod
    def _forward(p: dict[str, list[torch.Tensor]], base: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``base [K, N, D0]`` -> utility logits ``z [R, N, K]`` and assignment logits ``r [R, N, K]``."""
        k_exits, n, _ = base.shape
        r_count = p["a"][0].shape[0]
        zs, rs, us = [], [], []
        for k in range(k_exits):
            x = base[k].unsqueeze(0).expand(r_count, n, -1)
            if us:
                x = torch.cat([x, torch.stack(us, dim=-1)], dim=-1)  # [R, N, D0 + k]
            z = torch.einsum("rnd,rd->rn", x, p["a"][k]) + p["b"][k].unsqueeze(1)
            hidden = torch.relu(torch.einsum("rnd,rdh->rnh", x, p["w1"][k]) + p["b1"][k].unsqueeze(1))
            r = torch.einsum("rnh,rh->rn", hidden, p["w2"][k]) + p["b2"][k].unsqueeze(1)
            zs.append(z)
            rs.append(r)
            us.append(torch.sigmoid(z))
        return torch.stack(zs, dim=-1), torch.stack(rs, dim=-1)

    def _projected_distribution(self, pi_bar: torch.Tensor, costs: torch.Tensor, t: float) -> torch.Tensor:
        """Move ``pi_bar`` towards the cheapest exit (``t < 0``) or the costliest (``t > 0``); ``|t| <= 1``."""
        target = torch.zeros_like(pi_bar)
        target[int(costs.argmin()) if t < 0 else int(costs.argmax())] = 1.0
        return (1 - abs(t)) * pi_bar + abs(t) * target

    def _closed_form_t(self, pi_bar: torch.Tensor, costs: torch.Tensor) -> float:
        expected = float(pi_bar @ costs)
        if expected > self.budget:
            return -min(1.0, (expected - self.budget) / max(expected - float(costs.min()), 1e-12))
        return min(1.0, (self.budget - expected) / max(float(costs.max()) - expected, 1e-12))

    def _policy(self, u: torch.Tensor, pi_bar: torch.Tensor, costs: torch.Tensor, exact: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Thresholds and validation exits for utilities ``u [K, N]`` and mean distribution ``pi_bar [K]``."""
        if not self.params["budget_projection"]:
            th = thresholds_for_distribution(u, pi_bar)
            return th, assign_by_thresholds(u, th)
        if exact:
            _, th, ex = _search_budget(u, lambda t: self._projected_distribution(pi_bar, costs, t), costs, self.budget, -1.0, 1.0)
            return th, ex
        th = thresholds_for_distribution(u, self._projected_distribution(pi_bar, costs, self._closed_form_t(pi_bar, costs)))
        return th, assign_by_thresholds(u, th)

    def _fit(self, probs, labels, costs) -> None:
        hp = self.params
        gen = torch.Generator().manual_seed(int(hp["seed"]))
        k_exits, n, _ = probs.shape
        base = self._base_features(probs)  # [K, N, D0]
        correct = (probs.argmax(dim=2) == labels.view(1, -1)).float().T  # [N, K]
        c = (costs / costs.max()).float()  # costs in units of the full model
        b_rel = float(self.budget / costs.max())
        restarts = int(hp["restarts"])
        p = self._init_params(k_exits, base.shape[2], restarts, gen)
        util_params = p["a"] + p["b"]
        assign_params = p["w1"] + p["b1"] + p["w2"] + p["b2"]
        opt_u = torch.optim.Adam(util_params, lr=hp["lr"], weight_decay=hp["weight_decay"])
        opt_pi = torch.optim.Adam(assign_params, lr=hp["lr"], weight_decay=hp["weight_decay"])
        limit = self.budget * (1 + hp["budget_tolerance"])
        best_acc = torch.full((restarts,), -1.0)
        best_p = {key: [t.detach().clone() for t in ts] for key, ts in p.items()}
        stale = torch.zeros(restarts, dtype=torch.long)
        epochs_run = 0
        for epoch in range(int(hp["epochs"])):
            utility_phase = (epoch // int(hp["period"])) % 2 == 0
            for idx in torch.randperm(n, generator=gen).split(int(hp["batch_size"])):
                z, r = self._forward(p, base[:, idx])
                u = torch.sigmoid(z)
                pi = F.softmax(r, dim=-1)  # [R, B, K]
                if utility_phase:
                    w = pi.detach() / pi.detach().sum(dim=1, keepdim=True).clamp_min(1e-12)
                    bce = F.binary_cross_entropy_with_logits(z, correct[idx].unsqueeze(0).expand_as(z), reduction="none")
                    loss = (w * bce).sum(dim=1).mean(dim=-1).sum()
                    opt = opt_u
                else:
                    ub = u.detach().clamp_min(1e-6) ** hp["beta"]
                    t = ub / ub.sum(dim=-1, keepdim=True)
                    l_pi = (t * (torch.log(t.clamp_min(1e-12)) - F.log_softmax(r, dim=-1))).sum(-1).mean(-1)
                    l_b = ((pi * c).sum(-1).mean(-1) - b_rel).abs() / b_rel
                    loss = (hp["alpha_pi"] * l_pi + hp["alpha_b"] * l_b).sum()
                    opt = opt_pi
                opt_u.zero_grad(set_to_none=True)
                opt_pi.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            epochs_run = epoch + 1
            # track the best state of every restart by validation accuracy within the budget
            with torch.no_grad():
                z, r = self._forward(p, base)
                u_all, pi_bar = torch.sigmoid(z), F.softmax(r, dim=-1).mean(dim=1)  # [R, N, K], [R, K]
                for ri in range(restarts):
                    _, ex = self._policy(u_all[ri].T, pi_bar[ri].double(), costs, exact=False)
                    acc = accuracy(probs, labels, ex)
                    # with projection the final exact search enforces the budget; without it, check it here
                    fits = hp["budget_projection"] or realised_cost(ex, costs) <= limit
                    if fits and acc > best_acc[ri]:
                        best_acc[ri] = acc
                        stale[ri] = 0
                        for key in p:
                            for bt, t_ in zip(best_p[key], p[key], strict=True):
                                bt[ri] = t_.detach()[ri]
                    else:
                        stale[ri] += 1
            if bool((stale >= int(hp["patience"])).all()):
                break
        # choose among restarts with the exact budget rule
        with torch.no_grad():
            z, r = self._forward(best_p, base)
            u_all, pi_bar = torch.sigmoid(z), F.softmax(r, dim=-1).mean(dim=1)
            candidates = []
            for ri in range(restarts):
                try:
                    th, ex = self._policy(u_all[ri].T, pi_bar[ri].double(), costs, exact=True)
                except InfeasibleBudgetError:
                    continue
                cost = realised_cost(ex, costs)
                candidates.append(
                    {
                        "restart": ri,
                        "val_accuracy": accuracy(probs, labels, ex),
                        "val_cost": cost,
                        "thresholds": th.tolist(),
                        "within": cost <= limit,
                    }
                )
        within = [cand for cand in candidates if cand["within"]]
        if not within:
            raise InfeasibleBudgetError(
                f"no EENet restart met the budget {self.budget:.6g} on validation (tolerance {hp['budget_tolerance']})"
            )
        chosen = max(within, key=lambda cand: (cand["val_accuracy"], -cand["restart"]))
        ri = chosen["restart"]
        self.weights = {key: [t[ri].tolist() for t in ts] for key, ts in best_p.items()}
        self.thresholds = chosen["thresholds"]
        self.report = {
            "epochs_run": epochs_run,
            "chosen_restart": ri,
            "mean_exit_distribution": pi_bar[ri].tolist(),
            "restarts": [{k: v for k, v in cand.items() if k != "thresholds"} for cand in candidates],
        }

    def _weights_tensors(self) -> dict[str, list[torch.Tensor]]:
        return {key: [torch.tensor(v, dtype=torch.float32).unsqueeze(0) for v in vals] for key, vals in self.weights.items()}

    def utilities(self, probs: torch.Tensor) -> torch.Tensor:
        """Utility scores ``u [K, N]`` of probabilities ``[K, N, C]``."""
        self._check_probs(probs)
        with torch.no_grad():
            z, _ = self._forward(self._weights_tensors(), self._base_features(probs.float()))
        return torch.sigmoid(z[0]).T

    def assign(self, probs: torch.Tensor) -> torch.Tensor:
        return assign_by_thresholds(self.utilities(probs), torch.tensor(self.thresholds, dtype=torch.float32))

    def _state(self) -> dict[str, Any]:
        return {"params": self.params, "weights": self.weights, "thresholds": self.thresholds, "report": self.report}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.params = dict(state["params"])
        self.weights = copy.deepcopy(state["weights"])
        self.thresholds = [float(t) for t in state["thresholds"]]
        self.report = dict(state.get("report", {}))
        expected = [self.num_classes + 2 + k for k in range(self.num_exits)]
        got = [len(a) for a in self.weights["a"]]
        if got != expected:
            raise ValueError(
                f"EENet weights have feature sizes {got}, expected {expected} for {self.num_exits} exits x {self.num_classes} classes"
            )


METHODS: dict[str, type[ExitScheduler]] = {
    "eenet": EENetScheduler,
    "maxpred": MaxPredScheduler,
    "entropy": EntropyScheduler,
    "oracle": OracleScheduler,
    "static": StaticScheduler,
}


def make_scheduler(method: str, **params: Any) -> ExitScheduler:
    """A new, unfitted scheduler of ``method`` (a key of :data:`METHODS`) with its hyper-parameters."""
    try:
        cls = METHODS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; known: {sorted(METHODS)}") from None
    return cls(**params)


def scheduler_from_json(d: dict[str, Any]) -> ExitScheduler:
    """Rebuild a fitted scheduler from :meth:`ExitScheduler.to_json` output (checked, no pickle)."""
    if not isinstance(d, dict) or d.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"not a scheduler file of format version {FORMAT_VERSION}")
    method = d.get("method")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} in scheduler file; known: {sorted(METHODS)}")
    if len(d["costs"]) != d["num_exits"]:
        raise ValueError(f"scheduler file has {len(d['costs'])} costs for {d['num_exits']} exits")
    return METHODS[method]._from_json(d)
