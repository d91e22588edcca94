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

The combiner and the method's thresholds are fitted on validation; on which parts of it is ``params["combiner_fit"]``
(:func:`combiner_fit_options`, the benchmark's ``combiner_fit`` block): ``crossfit`` (the default: the thresholds on
out-of-fold combined outputs, the combiner that runs on all of it), ``same`` (both on all of it, as before the option)
or ``split`` (the combiner on one part, the thresholds on the rest): :func:`fit_combiner`, docs/combiners.md.
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
    "effective_costs", "COMBINER_FIT_MODES", "COMBINER_FIT_DEFAULTS", "combiner_fit_options", "validation_parts", "fit_combiner",
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


COMBINER_FIT_MODES = ("same", "crossfit", "split")
"""How a combined policy shares validation between its combiner and its method (:func:`fit_combiner`)."""

COMBINER_FIT_DEFAULTS: dict[str, Any] = {"mode": "crossfit", "folds": 2, "share": 0.5, "seed": 0}
"""The defaults of the ``combiner_fit`` options (the config schema's ``combiner_fit`` block gives the same, but for
``seed``: the run's ``scheduler_seed`` there). ``crossfit``: on the cached outputs of fashion_mnist_6exit_light it
loses no test accuracy against ``same`` (benchmarks/crossfit.py, docs/combiners.md)."""


def combiner_fit_options(options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``options`` (the benchmark's ``combiner_fit`` block, or part of it) with :data:`COMBINER_FIT_DEFAULTS` filled in
    and checked: ``mode`` one of :data:`COMBINER_FIT_MODES`, ``folds >= 2`` (``crossfit``), ``0 < share < 1``
    (``split``: the part of validation the combiner is fitted on), ``seed`` an integer (``None``: 0)."""
    out = {**COMBINER_FIT_DEFAULTS, **{k: v for k, v in (options or {}).items() if v is not None}}
    unknown = set(out) - set(COMBINER_FIT_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown combiner_fit option(s) {sorted(unknown)}; known: {sorted(COMBINER_FIT_DEFAULTS)}")
    if out["mode"] not in COMBINER_FIT_MODES:
        raise ValueError(f"combiner_fit mode {out['mode']!r}; known: {', '.join(COMBINER_FIT_MODES)}")
    out["folds"], out["seed"], out["share"] = int(out["folds"]), int(out["seed"]), float(out["share"])
    if out["folds"] < 2 or not 0 < out["share"] < 1:
        raise ValueError(f"combiner_fit wants folds >= 2 and 0 < share < 1; got {out['folds']} and {out['share']}")
    return out


def validation_parts(labels: torch.Tensor, options: Mapping[str, Any]) -> torch.Tensor:
    """``int64 [N]``: the part of validation each sample (``labels [N]``) falls in under the :func:`combiner_fit_options`
    ``options``, stratified by class and seeded: ``crossfit``, its fold ``0 .. folds-1`` (each class dealt out in turn
    over the folds, in an order drawn with ``seed``); ``split``, 0 for the combiner's part (``share`` of each class,
    rounded) and 1 for the thresholds'; ``same``, 0 for every sample."""
    n = labels.shape[0]
    parts = torch.zeros(n, dtype=torch.long)
    if options["mode"] == "same":
        return parts
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(options["seed"])))
    for c in labels.unique().tolist():
        members = perm[labels[perm] == c]  # this class's samples, in the drawn order
        if options["mode"] == "crossfit":
            parts[members] = torch.arange(members.numel()) % int(options["folds"])
        else:
            parts[members[int(round(options["share"] * members.numel())) :]] = 1
    return parts


def fit_combiner(name: str, logits: torch.Tensor, labels: torch.Tensor, costs: Sequence[float], options: Mapping[str, Any] | None = None
                 ) -> tuple[ExitCombiner, torch.Tensor, torch.Tensor | None]:  # fmt: skip
    """The combiner ``name`` a combined policy runs, and the validation outputs its method's thresholds are fitted on:
    ``(combiner, outputs [K, M, C], rows)``, ``rows`` the validation samples of ``outputs`` (``int64 [M]``; ``None``:
    all of them, in order). ``logits [K, N, C]``, ``labels [N]``, ``costs [K]``; ``options``: :func:`combiner_fit_options`.

    - ``same``: the combiner fitted on all of validation and its outputs there (the thresholds then fit outputs the
      combiner was fitted to: their validation accuracy is optimistic).
    - ``crossfit``: the combiner fitted on all of validation (the runtime's), and as outputs each sample's combined
      output by a combiner fitted on the other folds (:func:`validation_parts`): out-of-fold outputs, as a test
      sample's are to the combiner that runs.
    - ``split``: the combiner fitted on part 0 of validation (``share`` of it) and its outputs on part 1 (``rows``)."""
    opts = combiner_fit_options(options)
    if opts["mode"] == "same":
        combiner = make_combiner(name).fit(logits, labels, costs)
        return combiner, combiner.transform(logits), None
    parts = validation_parts(labels, opts)
    if opts["mode"] == "split":
        fit_rows, rows = (parts == 0).nonzero().view(-1), (parts == 1).nonzero().view(-1)
        combiner = make_combiner(name).fit(logits[:, fit_rows], labels[fit_rows], costs)
        return combiner, combiner.transform(logits[:, rows]), rows
    outputs = torch.empty(logits.shape, dtype=torch.float32)
    for fold in range(opts["folds"]):
        held = parts == fold
        outputs[:, held] = make_combiner(name).fit(logits[:, ~held], labels[~held], costs).transform(logits[:, held])
    return make_combiner(name).fit(logits, labels, costs), outputs, None


def _recorded(options: Mapping[str, Any]) -> dict[str, Any]:
    """The :func:`combiner_fit_options` a fitted file records: the mode, and what it reads (``folds`` or ``share``) with
    the seed."""
    opts = combiner_fit_options(options)
    read = "folds" if opts["mode"] == "crossfit" else "share"
    return {"mode": opts["mode"], read: opts[read], "seed": opts["seed"]}


class CombinedPolicy(ExitScheduler):
    """An exit combiner followed by a policy: ``"<combiner>+<method>"``.

    ``combiner``: an :class:`~eenet.combiners.ExitCombiner` (fitted before the policy: :func:`fit_budgets` fits it
    once for every budget); ``policy``: the method's scheduler, fitted by :meth:`fit` on the combined probabilities
    ``[K, N, C]`` (what :meth:`outputs` returns); ``combiner_losses``: :func:`combiner_losses` of the combined
    validation outputs the method was fitted on (``[K]``, set by :func:`fit_budgets`; ``None``: not computed);
    ``combiner_fit``: the :func:`combiner_fit_options` it was fitted with (``None``: ``same``, as every file written
    before the option). Its JSON is the method's, under the combined name, with the combiner's state under
    ``"combiner"``, the losses under ``"combiner_losses"`` (what the report's table of combiner losses reads) and, but
    for ``same``, the options under ``"combiner_fit"``.
    """

    needs_logits = True

    def __init__(self, combiner: ExitCombiner, policy: ExitScheduler, combiner_losses: Sequence[float] | None = None,
                 combiner_fit: Mapping[str, Any] | None = None) -> None:  # fmt: skip
        self.combiner = combiner
        self.policy = policy
        self.combiner_losses = None if combiner_losses is None else [float(d) for d in combiner_losses]
        self.combiner_fit = None if combiner_fit is None or combiner_fit.get("mode") == "same" else _recorded(combiner_fit)

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
        out = out if self.combiner_losses is None else {**out, "combiner_losses": self.combiner_losses}
        return out if self.combiner_fit is None else {**out, "combiner_fit": dict(self.combiner_fit)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CombinedPolicy:
        comb, method = split_method(str(d["method"]))
        if comb is None or not isinstance(d.get("combiner"), dict) or d["combiner"].get("name") != comb:
            raise ValueError(f"scheduler file of method {d['method']!r} holds no {comb} combiner")
        obj = cls(combiner_from_json(d["combiner"]), METHODS[method].from_json(d), d.get("combiner_losses"), d.get("combiner_fit"))
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

    A combined policy's combiner is fitted by :func:`fit_combiner` with ``params["combiner_fit"]`` (the benchmark's
    ``combiner_fit`` block; absent: :data:`COMBINER_FIT_DEFAULTS`), and every budget's method on the validation
    outputs it gives. Its :func:`combiner_losses` on those outputs are computed once, here, logged as a warning where
    positive and kept in every budget's policy (its JSON's ``combiner_losses``)."""
    comb, base = split_method(method)
    combiner, losses, fit_options = None, None, None
    if comb is not None:
        if logits is None:
            raise ValueError(f"{method} needs the raw logits of every exit; this cache has none: re-run snakemake --forcerun cache_logits")
        fit_options = combiner_fit_options(params.get("combiner_fit"))
        combiner, combined, rows = fit_combiner(comb, logits, labels, costs, fit_options)
        if rows is not None:  # split: the method sees the part of validation the combiner was not fitted on
            probs, labels = probs[:, rows], labels[rows]
        losses = combiner_losses(combined, probs, labels)
        worse = [(k, d) for k, d in enumerate(losses) if d > 0]
        if worse:  # e.g. product anytime on a network whose late exits are already good
            log.warning("the %s combiner lowers the validation accuracy of exit(s) %s below the exit's own (by %s points)",
                        comb, ", ".join(str(k) for k, _ in worse), ", ".join(f"{100 * d:.2f}" for _, d in worse))  # fmt: skip
        probs = combined

    def new_policy() -> ExitScheduler:
        policy = make_scheduler(base, **accepted_params(base, params))
        return policy if combiner is None else CombinedPolicy(combiner, policy, losses, fit_options)

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
