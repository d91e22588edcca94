"""The scheduler interface, the registry of policies, and the pieces every threshold policy shares.

Shapes: ``probs`` is the softmax of every exit, ``float [K, N, C]``; ``labels`` ``int64 [N]``; ``costs``
the cumulative cost to reach each exit, ``[K]`` (ms per sample); ``budget`` the allowed average cost per
sample, in the same unit. ``fit`` only ever sees validation data.

Conventions (scikit-learn's): the constructor stores its arguments as attributes of the same names and
does nothing else; what ``fit`` learns lives in attributes ending in ``_``; :meth:`ExitScheduler.get_params`
returns the constructor arguments, and a JSON file is turned back into a scheduler through the constructor.
"""

from __future__ import annotations

import abc
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import torch
import torch.nn.functional as F

__all__ = [
    "FORMAT_VERSION",
    "InfeasibleBudgetError",
    "ExitScheduler",
    "METHODS",
    "register_method",
    "thresholds_for_distribution",
    "assign_by_thresholds",
    "realised_cost",
    "exit_predictions",
    "accuracy",
    "search_budget",
]

FORMAT_VERSION = 1


class InfeasibleBudgetError(ValueError):
    """The budget is below the cheapest exit's cost (or the lowest this policy can reach): no fit meets it."""


# ---------------------------------------------------------------------------------------------------
# shared pieces


def thresholds_for_distribution(scores: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Thresholds ``[K]`` that send a fraction ~``q_k`` of the samples to exit ``k``.

    ``n_k = floor(q_k N)`` (the last exit takes the rest) and, exit by exit, ``T_k`` is the ``n_k``-th
    largest score among the samples not yet assigned (MSDNet's and EENet's rule).

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


def exit_predictions(probs: torch.Tensor, exits: torch.Tensor) -> torch.Tensor:
    """The class each sample gets from its exit: ``probs [K, N, C]``, ``exits int64 [N]`` -> ``int64 [N]``."""
    return probs.argmax(dim=2).gather(0, exits.view(1, -1)).squeeze(0)


def accuracy(probs: torch.Tensor, labels: torch.Tensor, exits: torch.Tensor) -> float:
    """Accuracy when sample ``n`` is classified by exit ``exits[n]``: ``[K, N, C], [N], [N]``."""
    return float((exit_predictions(probs, exits) == labels).double().mean())


def as_tensor(x: Any, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return x.to(dtype) if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=dtype)


def search_budget(
    scores: torch.Tensor, family: Callable[[float], torch.Tensor], costs: torch.Tensor, budget: float, lo: float, hi: float, iters: int = 50
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Largest ``t`` in ``[lo, hi]`` whose distribution ``family(t)`` has realised validation cost <= budget.

    ``scores [K, N]``; ``family`` must move mass towards costlier exits as ``t`` grows. Bisection.
    Returns ``(t, thresholds [K], exits [N])``.
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


def check_budget(costs: torch.Tensor, budget: float) -> None:
    if not math.isfinite(budget) or budget <= 0:
        raise InfeasibleBudgetError(f"budget must be a positive number, got {budget}")
    if budget < float(costs.min()):
        raise InfeasibleBudgetError(
            f"budget {budget:.6g} is below the cost of the cheapest exit ({float(costs.min()):.6g}): no policy can meet it"
        )


# ---------------------------------------------------------------------------------------------------
# the interface

# what every fitted scheduler's JSON carries at its top level, and the attribute (ending in _) it is kept in
_FITTED = ("num_exits", "num_classes", "costs", "budget", "val_cost", "val_accuracy")


class ExitScheduler(abc.ABC):
    """Base class of every exit policy.

    Subclasses set ``method`` (the name in configs and JSON files), implement :meth:`_fit` and
    :meth:`assign`, and, when they learn more than the common attributes, :meth:`_state` /
    :meth:`_load_state` for the JSON file. A policy that looks at the labels of the samples it assigns
    (the oracle) sets ``requires_labels``.

    Fitted attributes: ``num_exits_``, ``num_classes_``, ``costs_`` (``[K]``), ``budget_``,
    ``val_cost_`` and ``val_accuracy_`` (of the policy on the data it was fitted on).
    """

    method: ClassVar[str] = ""
    requires_labels: ClassVar[bool] = False
    needs_logits: ClassVar[bool] = False
    """Whether :meth:`outputs` and :meth:`exit_outputs` read the raw logits of every exit (a combined policy)."""

    num_exits_: int
    num_classes_: int
    costs_: list[float]
    budget_: float
    val_cost_: float
    val_accuracy_: float

    @classmethod
    def _param_names(cls) -> list[str]:
        return [n for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, by name (in the constructor's order)."""
        return {name: getattr(self, name) for name in self._param_names()}

    # -- what the policy reads ------------------------------------------------------------------------
    def outputs(self, cache: Mapping[str, torch.Tensor], source: str = "the cache") -> torch.Tensor:
        """The probabilities ``[K, N, C]`` that :meth:`fit`, :meth:`assign` and :meth:`leaves` read, from a cache of
        ``probs`` (softmax of every exit, ``[K, N, C]``) and, where there are, the raw ``logits`` (``[K, N, C]``);
        ``source`` names the cache in errors. The softmax here; a combined policy's combiner output."""
        return cache["probs"]

    def exit_outputs(self, k: int, logits: Sequence[torch.Tensor]) -> torch.Tensor:
        """What :meth:`outputs` gives at exit ``k``, computed as the runtime does after running it: from the raw logits
        ``[B, C]`` of exits ``0..k`` (a policy without :attr:`needs_logits` reads the last of them only)."""
        return F.softmax(logits[-1].float(), dim=1)

    def exit_state(self, k: int, logits: torch.Tensor) -> torch.Tensor:
        """What the runtime keeps of exit ``k`` for the exits after it, from its raw logits ``[B, C]``, computed once
        (a combined policy: its combiner's :meth:`~eenet.combiners.ExitCombiner.prepare`); the logits themselves here."""
        return logits

    def outputs_from_states(self, k: int, states: Sequence[torch.Tensor], logits: torch.Tensor) -> torch.Tensor:
        """:meth:`exit_outputs` at exit ``k`` from :meth:`exit_state` of exits ``0..k`` (``k+1`` tensors ``[B, C]``) and
        exit ``k``'s raw logits ``[B, C]``: the runtime's incremental step (the same values as :meth:`exit_outputs`)."""
        return self.exit_outputs(k, (logits,))

    @property
    def family(self) -> str:
        """The kind of work a decision costs: two policies of one family that send every sample to the same exit do
        the same work (the runtime times them once)."""
        return type(self).__name__

    # -- fitting -------------------------------------------------------------------------------------
    def fit(self, probs: torch.Tensor, labels: torch.Tensor, costs: Any, budget: float) -> ExitScheduler:
        """Fit on validation ``probs [K, N, C]``, ``labels [N]``, ``costs [K]``, ``budget`` (same unit as costs).

        Raises:
            ValueError: shapes that do not agree.
            InfeasibleBudgetError: a budget no assignment of this policy can meet on validation.
        """
        costs_t = as_tensor(costs)
        if probs.dim() != 3 or costs_t.numel() != probs.shape[0] or labels.shape[0] != probs.shape[1]:
            raise ValueError(
                f"shapes do not agree: probs {tuple(probs.shape)} (want [K, N, C]), "
                f"labels {tuple(labels.shape)}, costs {tuple(costs_t.shape)}"
            )
        check_budget(costs_t, float(budget))
        self.num_exits_, self.num_classes_ = int(probs.shape[0]), int(probs.shape[2])
        self.costs_ = [float(c) for c in costs_t]
        self.budget_ = float(budget)
        self.__dict__.pop("_threshold_cache", None)  # thresholds about to change
        self._fit(probs.float(), labels.long(), costs_t)
        exits = self.assign(probs, labels)
        self.val_cost_ = realised_cost(exits, costs_t)
        self.val_accuracy_ = accuracy(probs, labels, exits)
        return self

    @abc.abstractmethod
    def _fit(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> None:
        """Learn the policy's state from ``probs float [K, N, C]``, ``labels int64 [N]``, ``costs float64 [K]``."""

    @abc.abstractmethod
    def assign(self, probs: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Exit index of every sample: ``[K, N, C] (, labels [N]) -> int64 [N]``.

        ``labels`` is read only by policies with ``requires_labels`` (the oracle); others ignore it.
        """

    def leaves(self, k: int, probs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """Which samples still running at exit ``k`` leave there, from the probabilities of exits ``0..k``.

        ``probs``: ``[k+1, B, C]``, or ``k+1`` tensors ``[B, C]`` -> ``bool [B]`` (all ``True`` at the last exit).
        Applied exit after exit to the samples that did not leave earlier, this gives the exits :meth:`assign`
        gives: what :mod:`eenet.measure.runtime` runs.
        Policies whose decision needs later exits or the labels (the oracle) cannot run this way.
        """
        raise NotImplementedError(f"the {self.method} policy cannot decide exit by exit")

    def leaves_one(self, k: int, probs: Sequence[torch.Tensor]) -> bool:
        """:meth:`leaves` for a single sample (``k+1`` tensors ``[1, C]``), as a Python bool: the runtime's batch-1
        path, where every tensor operation saved is latency saved. Subclasses may answer it faster."""
        return bool(self.leaves(k, probs)[0])

    def _check_step(self, k: int, probs: torch.Tensor | Sequence[torch.Tensor]) -> bool:
        """Check ``leaves``' arguments; ``True`` at the last exit (everything leaves)."""
        if not hasattr(self, "num_exits_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted")
        if not 0 <= k < self.num_exits_ or len(probs) != k + 1 or probs[k].dim() != 2 or probs[k].shape[1] != self.num_classes_:
            raise ValueError(
                f"{self.method} scheduler ({self.num_exits_} exits x {self.num_classes_} classes) needs the probabilities "
                f"of exits 0..{k} ([k+1, B, C]); got {len(probs)} exits of shape {tuple(probs[-1].shape)}"
            )
        return k == self.num_exits_ - 1

    def _threshold(self, k: int, device: torch.device) -> torch.Tensor:
        """``thresholds_[k]`` as a float32 scalar tensor on ``device`` (made once: the runtime asks at every exit)."""
        cache = self.__dict__.setdefault("_threshold_cache", {})
        key = (k, device)
        if key not in cache:
            cache[key] = torch.tensor(self.thresholds_[k], dtype=torch.float32, device=device)
        return cache[key]

    def _check_probs(self, probs: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        if not hasattr(self, "num_exits_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted")
        if probs.dim() != 3 or probs.shape[0] != self.num_exits_ or probs.shape[2] != self.num_classes_:
            raise ValueError(
                f"{self.method} scheduler was fitted for {self.num_exits_} exits x {self.num_classes_} classes, "
                f"got probabilities of shape {tuple(probs.shape)} ([K, N, C])"
            )
        if self.requires_labels and labels is None:
            raise ValueError(f"the {self.method} policy needs the labels of the samples it assigns")

    # -- JSON ----------------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        """What the policy learned (and its parameters), as plain JSON values."""
        return {}

    def _load_state(self, state: dict[str, Any]) -> None:  # noqa: B027  (optional hook: most policies learn nothing more)
        """Set the fitted attributes from :meth:`_state`'s output (the constructor has already run)."""

    @classmethod
    def _params_from_state(cls, state: dict[str, Any]) -> dict[str, Any]:
        """Constructor arguments found in a JSON state: under ``params`` or at its top level."""
        params = state.get("params", state)
        return {name: params[name] for name in cls._param_names() if name in params}

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict that :func:`scheduler_from_json` turns back into this scheduler."""
        if not hasattr(self, "num_exits_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted")
        return {
            "format_version": FORMAT_VERSION,
            "method": self.method,
            **{key: getattr(self, f"{key}_") for key in _FITTED},
            "state": self._state(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ExitScheduler:
        """The fitted scheduler of a :meth:`to_json` dict, rebuilt through the constructor."""
        obj = cls(**cls._params_from_state(d["state"]))
        for key in _FITTED:
            setattr(obj, f"{key}_", d[key])
        obj._load_state(d["state"])
        return obj


METHODS: dict[str, type[ExitScheduler]] = {}

S = TypeVar("S", bound=type[ExitScheduler])


def register_method(cls: S) -> S:
    """Class decorator: make a policy available by its ``method`` name (configs, JSON files), a key of
    :data:`eenet.catalog.METHODS` (its label and config block)."""
    from eenet.catalog import METHODS as DECLARED

    if not cls.method or cls.method in METHODS:
        raise ValueError(f"{cls.__name__}: method name {cls.method!r} is empty or already registered")
    if cls.method not in DECLARED:
        raise ValueError(f"{cls.__name__}: method {cls.method!r} is not in eenet.catalog.METHODS: add it there with its label")
    METHODS[cls.method] = cls
    return cls
