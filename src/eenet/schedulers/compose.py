"""Policies by name: make one, compose one with an exit combiner, fit one at every budget, restore one from JSON.

A policy's name is a registered method (``maxpred``) or a combiner followed by one (``ztw_ens+maxpred``, parsed by
:func:`eenet.catalog.split_method` alone). The second kind is :class:`CombinedPolicy`, one policy made of two steps
as scikit-learn's ``Pipeline`` is: the combiner (:mod:`eenet.combiners`) maps the raw logits of the exits run so far to
probabilities, the method decides on them. It is fitted, saved, loaded and run through the interface every policy
has (:class:`~eenet.schedulers.ExitScheduler`): :meth:`~CombinedPolicy.outputs` on a cache,
:meth:`~CombinedPolicy.exit_outputs` in the runtime, then ``fit`` / ``assign`` / ``leaves`` of the method.

    sched = make_scheduler("ztw_ens+maxpred")                    # unfitted
    (sched,) = fit_budgets("ztw_ens+maxpred", {}, val_probs, val_logits, val_labels, costs, [budget])
    exits = sched.assign(sched.outputs({"probs": test_probs, "logits": test_logits}))
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from eenet.catalog import FORMER_COMBINERS, compose_method, renamed_method, split_method
from eenet.combiners import ExitCombiner, combiner_from_json, make_combiner
from eenet.schedulers.base import _FITTED, FORMAT_VERSION, METHODS, ExitScheduler, InfeasibleBudgetError

__all__ = [
    "CombinedPolicy", "make_scheduler", "accepted_params", "scheduler_from_json", "fit_budgets", "fit_policy", "combiner_losses",
    "effective_costs",
]  # fmt: skip

log = logging.getLogger(__name__)


def effective_costs(costs_ms: Sequence[float], decision_ms: Sequence[float]) -> list[float]:
    """``costs_ms[k] + sum_{j <= k} decision_ms[j]``: the cost of leaving at exit ``k`` with the policy's own decisions at
    exits ``0..k`` (``[K]`` each, ms)."""
    if len(costs_ms) != len(decision_ms):
        raise ValueError(f"{len(decision_ms)} decision costs for {len(costs_ms)} exits")
    out, paid = [], 0.0
    for c, d in zip(costs_ms, decision_ms, strict=True):
        paid += float(d)
        out.append(float(c) + paid)
    return out


def combiner_losses(combined: torch.Tensor, probs: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Per exit, the validation accuracy the combiner's output loses against the exit's own softmax (points of 1,
    ``> 0``: the combiner is worse there): ``combined``, ``probs [K, N, C]``, ``labels [N]``."""
    own = (probs.argmax(dim=2) == labels).double().mean(dim=1)
    comb = (combined.argmax(dim=2) == labels).double().mean(dim=1)
    return (own - comb).tolist()


class CombinedPolicy(ExitScheduler):
    """An exit combiner followed by a policy: ``"<combiner>+<method>"``.

    ``combiner``: an :class:`~eenet.combiners.ExitCombiner` (fitted before the policy: :func:`fit_budgets` fits it
    once for every budget); ``policy``: the method's scheduler, fitted by :meth:`fit` on the combined probabilities
    ``[K, N, C]`` (what :meth:`outputs` returns); ``combiner_losses``: :func:`combiner_losses` of the combiner on the
    validation outputs it was fitted on (``[K]``, set by :func:`fit_budgets`; ``None``: not computed). Its JSON is the
    method's, under the combined name, with the combiner's state under ``"combiner"`` and the losses under
    ``"combiner_losses"`` (what the report's table of combiner losses reads).
    """

    needs_logits = True

    def __init__(self, combiner: ExitCombiner, policy: ExitScheduler, combiner_losses: Sequence[float] | None = None) -> None:
        self.combiner = combiner
        self.policy = policy
        self.combiner_losses = None if combiner_losses is None else [float(d) for d in combiner_losses]

    @property
    def method(self) -> str:  # type: ignore[override]  (a class constant elsewhere: here it names both steps)
        return compose_method(self.combiner.name, self.policy.method)

    @property
    def requires_labels(self) -> bool:  # type: ignore[override]
        return self.policy.requires_labels

    @property
    def family(self) -> str:
        return f"{self.policy.family}+{self.combiner.name}"

    def outputs(self, cache: Mapping[str, torch.Tensor], source: str = "the cache") -> torch.Tensor:
        if "logits" not in cache:
            raise ValueError(f"{source} has no raw logits (written before they were cached): re-run snakemake --forcerun cache_logits")
        self._check_combiner()
        return self.combiner.transform(cache["logits"])

    def exit_outputs(self, k: int, logits: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.combiner.step(k, logits)

    def exit_state(self, k: int, logits: torch.Tensor) -> torch.Tensor:
        return self.combiner.prepare(k, logits)

    def outputs_from_states(self, k: int, states: Sequence[torch.Tensor], logits: torch.Tensor) -> torch.Tensor:
        return self.combiner.combine(k, states, logits)

    def _check_combiner(self) -> None:
        if not hasattr(self.combiner, "num_exits_"):
            raise RuntimeError(f"{self.method}: the {self.combiner.name} combiner is not fitted (fit_budgets fits both steps)")

    def _fit(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> None:
        self._check_combiner()
        self.policy.fit(probs, labels, costs, self.budget_)

    def assign(self, probs: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.policy.assign(probs, labels)

    def leaves(self, k: int, probs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        return self.policy.leaves(k, probs)

    def leaves_one(self, k: int, probs: Sequence[torch.Tensor]) -> bool:
        return self.policy.leaves_one(k, probs)

    def to_json(self) -> dict[str, Any]:
        out = {**self.policy.to_json(), "method": self.method, "combiner": self.combiner.to_json()}
        return out if self.combiner_losses is None else {**out, "combiner_losses": self.combiner_losses}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CombinedPolicy:
        comb, method = split_method(str(d["method"]))
        if comb is None or not isinstance(d.get("combiner"), dict) or d["combiner"].get("name") != comb:
            raise ValueError(f"scheduler file of method {d['method']!r} holds no {comb} combiner")
        obj = cls(combiner_from_json(d["combiner"]), METHODS[method].from_json(d), d.get("combiner_losses"))
        for key in _FITTED:
            setattr(obj, f"{key}_", d[key])
        return obj


def make_scheduler(method: str, **params: Any) -> ExitScheduler:
    """A new, unfitted policy of name ``method`` (a key of :data:`METHODS`, or ``"<combiner>+<method>"``) with the
    method's hyper-parameters."""
    comb, base = split_method(method)
    try:
        cls = METHODS[base]
    except KeyError:
        raise ValueError(f"unknown method {base!r}; known: {sorted(METHODS)}") from None
    policy = cls(**params)
    return policy if comb is None else CombinedPolicy(make_combiner(comb), policy)


def accepted_params(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``params`` that ``method``'s constructor takes (a combined policy's: its method's): a config
    block shared by several policies (the benchmark's ``eenet:`` block, for EENet and its ablations, less what an
    ablation fixes)."""
    base = split_method(method)[1]
    if base not in METHODS:
        raise ValueError(f"unknown method {base!r}; known: {sorted(METHODS)}")
    names = METHODS[base]._param_names()
    return {k: v for k, v in params.items() if k in names}


def scheduler_from_json(d: dict[str, Any]) -> ExitScheduler:
    """Rebuild a fitted policy from :meth:`ExitScheduler.to_json` output (checked, no pickle)."""
    if not isinstance(d, dict) or d.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"not a scheduler file of format version {FORMAT_VERSION}")
    from eenet.io import decode_nonfinite

    d = _renamed(decode_nonfinite(d))  # standard JSON: a threshold of -inf is written "-Infinity"
    comb, method = split_method(str(d.get("method")))
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} in scheduler file; known: {sorted(METHODS)}")
    if len(d["costs"]) != d["num_exits"]:
        raise ValueError(f"scheduler file has {len(d['costs'])} costs for {d['num_exits']} exits")
    return METHODS[method].from_json(d) if comb is None else CombinedPolicy.from_json(d)


def _renamed(d: dict[str, Any]) -> dict[str, Any]:
    """A scheduler file's dict with a former combiner name (``ztw``, saved before it was renamed) read as the name now,
    in ``method`` and in ``combiner.name`` (a copy; ``d`` itself when nothing is renamed)."""
    method, notice = renamed_method(str(d.get("method")))
    if notice is None:
        return d
    log.info("%s", notice)
    comb = d.get("combiner")
    if isinstance(comb, dict):
        comb = {**comb, "name": FORMER_COMBINERS.get(comb.get("name"), comb.get("name"))}
    return {**d, "method": method, "combiner": comb}


def fit_budgets(method: str, params: dict[str, Any], probs: torch.Tensor, logits: torch.Tensor | None, labels: torch.Tensor,
                costs: Sequence[float], budgets: Sequence[float], overhead: Callable[[ExitScheduler], Sequence[float]] | None = None
                ) -> list[ExitScheduler | InfeasibleBudgetError]:  # fmt: skip
    """Fit the policy ``method`` on validation at every budget of ``budgets`` (ms per sample): ``probs [K, N, C]``, the
    raw ``logits [K, N, C]`` (needed by a combined policy), ``labels int64 [N]``, ``costs [K]``; ``params``: the method's
    hyper-parameters (those it does not take are left out). A combiner is fitted once (it does not depend on the
    budget) and shared; each budget's method is fitted anew, as a job of its own would be. Returns one entry per
    budget: the fitted policy, or the :class:`~eenet.schedulers.InfeasibleBudgetError` that budget raised.

    ``overhead``: ``overhead(fitted policy) -> ms [K]``, the policy's own decision work at each exit beyond ``costs``
    (:func:`eenet.measure.overhead.decision_overhead`). Given, it is measured once, on a preliminary fit at the largest
    budget on at most 2,000 validation samples (the whole set where that is infeasible), and every budget is fitted
    against the effective costs ``costs[k] + sum_{j <= k} overhead[j]`` (a sample leaving at ``k`` paid the decisions
    at ``0..k``): the fitted policy's ``costs_`` are those, and its ``decision_ms_`` the overhead. A fit that decides
    as another kind of policy than the preliminary one (its ``family``: EENet fallen back to MaxPred) has its own
    overhead measured and is fitted again against it, once.

    A combined policy's :func:`combiner_losses` are computed once, here, logged as a warning where positive and kept in
    every budget's policy (its JSON's ``combiner_losses``)."""
    comb, base = split_method(method)
    combiner, losses = None, None
    if comb is not None:
        if logits is None:
            raise ValueError(f"{method} needs the raw logits of every exit; this cache has none: re-run snakemake --forcerun cache_logits")
        combiner = make_combiner(comb).fit(logits, labels, costs)
        combined = combiner.transform(logits)
        losses = combiner_losses(combined, probs, labels)
        worse = [(k, d) for k, d in enumerate(losses) if d > 0]
        if worse:  # e.g. product anytime on a network whose late exits are already good
            log.warning("the %s combiner lowers the validation accuracy of exit(s) %s below the exit's own (by %s points)",
                        comb, ", ".join(str(k) for k, _ in worse), ", ".join(f"{100 * d:.2f}" for _, d in worse))  # fmt: skip
        probs = combined

    def new_policy() -> ExitScheduler:
        policy = make_scheduler(base, **accepted_params(base, params))
        return policy if combiner is None else CombinedPolicy(combiner, policy, losses)

    decision: list[float] | None = None
    raw_costs = [float(c) for c in costs]
    probe: ExitScheduler | None = None
    if overhead is not None and len(budgets):
        n = probs.shape[1]
        few = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:2000].sort().values
        for rows in [few, torch.arange(n)] if n > 2000 else [torch.arange(n)]:  # a cheap fit first: any fit of the kind
            try:
                probe = new_policy().fit(probs[:, rows], labels[rows], costs, max(budgets))
                break
            except InfeasibleBudgetError:
                continue
        # no fit at the largest budget: none at any, with or without the overhead
        decision = [0.0] * len(costs) if probe is None else [float(d) for d in overhead(probe)]
        costs = effective_costs(raw_costs, decision)
    fitted: list[ExitScheduler | InfeasibleBudgetError] = []
    for budget in budgets:
        sched = new_policy()
        try:
            sched.fit(probs, labels, costs, budget)
        except InfeasibleBudgetError as exc:
            fitted.append(exc)
            continue
        if decision is not None and probe is not None and sched.family != probe.family:
            # it decides as another kind of policy than the probe (EENet fallen back to MaxPred): its own overhead, refitted
            own = [float(d) for d in overhead(sched)]  # type: ignore[misc]  (overhead is set with decision)
            again = new_policy()
            try:
                again.fit(probs, labels, effective_costs(raw_costs, own), budget)
                sched = again
                sched.decision_ms_ = own  # type: ignore[attr-defined]
            except InfeasibleBudgetError as exc:
                fitted.append(exc)
                continue
        elif decision is not None:
            sched.decision_ms_ = decision  # type: ignore[attr-defined]  (not in its JSON: fit_scheduler writes it beside)
        fitted.append(sched)
    return fitted


def fit_policy(method: str, params: dict[str, Any], probs: torch.Tensor, logits: torch.Tensor | None, labels: torch.Tensor,
               costs: Sequence[float], budget: float,
               overhead: Callable[[ExitScheduler], Sequence[float]] | None = None) -> ExitScheduler:  # fmt: skip
    """:func:`fit_budgets` at one budget (``overhead``: as there); raises :class:`~eenet.schedulers.InfeasibleBudgetError`
    where it is infeasible."""
    (fitted,) = fit_budgets(method, params, probs, logits, labels, costs, [budget], overhead)
    if isinstance(fitted, Exception):
        raise fitted
    return fitted
