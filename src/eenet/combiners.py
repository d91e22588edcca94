"""Exit combiners: new probabilities at exit ``k`` from the raw logits of exits ``0..k``.

A combiner is fitted on validation only (``fit(logits [K, N, C], labels [N], costs [K])``) and then maps the logits
of the exits run so far to probabilities at the last of them: :meth:`ExitCombiner.step` (``k+1`` tensors ``[B, C]``
-> ``[B, C]``), what the adaptive runtime calls after every exit, and :meth:`ExitCombiner.transform`
(``[K, N, C] -> [K, N, C]``), the same steps on the cache. Both run the same float32 arithmetic, row by row, so the
runtime's decisions equal the cached evaluation's.

A combiner composes with every exit policy: the method ``"<combiner>+<policy>"`` (``ztw+maxpred``) fits the combiner,
then the policy on the combined validation probabilities (:func:`fit_combined`); the policy keeps the combiner in
its ``combiner_`` attribute and its JSON file (:func:`eenet.schedulers.scheduler_from_json` restores it).

- ``ztw``: geometric weighted ensemble (Zero Time Waste): ``z_k = sum_{j<=k} exp(w_kj) log p_j + b_k``, ``w`` and the
  per-class ``b`` fitted by cross-entropy.
- ``mie``: model-internal ensemble with per-exit temperatures: the cost-weighted running mean of
  ``softmax(z_j / T_j)``, each ``T_j`` chosen in turn to minimise the ensemble's validation NLL at exit ``j``.
- ``pa``: product anytime: ``prod_{j<=k} max(z_j, 0)^{a_k}``, renormalised (the softmax of exit ``k`` when every
  class is zero); the common exponent ``a_k`` is chosen on validation NLL (it changes confidences, not the argmax).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

__all__ = [
    "ExitCombiner", "COMBINERS", "make_combiner", "combiner_from_json", "split_method", "fit_combined", "fit_budgets", "policy_outputs",
]  # fmt: skip

_GRID = torch.logspace(-1.5, 1.5, 61, dtype=torch.float64)  # temperatures / exponents tried (0.03 .. 32)


def _nll(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-likelihood of ``probs [N, C]`` at ``labels [N]``."""
    return float(-torch.log(probs.double().gather(1, labels.view(-1, 1)).clamp_min(1e-12)).mean())


def _check(logits: torch.Tensor, labels: torch.Tensor | None = None) -> None:
    if logits.dim() != 3 or (labels is not None and labels.shape[0] != logits.shape[1]):
        raise ValueError(f"combiner wants logits [K, N, C] and labels [N]; got {tuple(logits.shape)} and {tuple(labels.shape)}")


class ExitCombiner(abc.ABC):
    """Base class: subclasses set ``name``, implement :meth:`_fit`, :meth:`step`, :meth:`_state`, :meth:`_load`."""

    name: ClassVar[str] = ""
    num_exits_: int

    def fit(self, logits: torch.Tensor, labels: torch.Tensor, costs: Sequence[float] | None = None) -> ExitCombiner:
        """Fit on validation ``logits [K, N, C]``, ``labels int64 [N]``; ``costs [K]`` (cumulative cost per exit)."""
        _check(logits, labels)
        self.num_exits_ = int(logits.shape[0])
        c = [1.0] * self.num_exits_ if costs is None else [float(v) for v in costs]
        if len(c) != self.num_exits_:
            raise ValueError(f"{len(c)} costs for {self.num_exits_} exits")
        self._fit(logits.float(), labels.long(), c)
        return self

    @abc.abstractmethod
    def _fit(self, logits: torch.Tensor, labels: torch.Tensor, costs: list[float]) -> None: ...

    @abc.abstractmethod
    def step(self, k: int, logits: Sequence[torch.Tensor]) -> torch.Tensor:
        """Probabilities ``[B, C]`` at exit ``k`` from the logits of exits ``0..k`` (``k+1`` tensors ``[B, C]``)."""

    def transform(self, logits: torch.Tensor) -> torch.Tensor:
        """``[K, N, C]`` logits -> ``[K, N, C]`` combined probabilities (float32), every exit's :meth:`step`."""
        _check(logits)
        if logits.shape[0] != self.num_exits_:
            raise ValueError(f"{self.name} combiner was fitted for {self.num_exits_} exits, got logits of shape {tuple(logits.shape)}")
        z = [logits[k].float() for k in range(logits.shape[0])]
        return torch.stack([self.step(k, z[: k + 1]) for k in range(len(z))])

    @abc.abstractmethod
    def _state(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def _load(self, state: dict[str, Any]) -> None: ...

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (finite floats only) that :func:`combiner_from_json` turns back into this combiner."""
        if not hasattr(self, "num_exits_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted")
        return {"name": self.name, "num_exits": self.num_exits_, **self._state()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ExitCombiner:
        obj = cls()
        obj.num_exits_ = int(d["num_exits"])
        obj._load(d)
        return obj


class ZeroTimeWaste(ExitCombiner):
    """Geometric weighted ensemble. Fitted: ``weights_`` (``[K][k+1]``, the ``w_kj``), ``bias_`` (``[K][C]``)."""

    name = "ztw"

    def __init__(self, iters: int = 100) -> None:
        self.iters = iters

    def _fit(self, logits: torch.Tensor, labels: torch.Tensor, costs: list[float]) -> None:
        logp = F.log_softmax(logits.double(), dim=2)
        self.weights_, self.bias_ = [], []
        for k in range(logp.shape[0]):
            w = torch.zeros(k + 1, dtype=torch.float64, requires_grad=True)
            b = torch.zeros(logp.shape[2], dtype=torch.float64, requires_grad=True)
            opt = torch.optim.LBFGS([w, b], lr=1, max_iter=self.iters, line_search_fn="strong_wolfe")

            def closure(w: torch.Tensor = w, b: torch.Tensor = b, k: int = k, opt: torch.optim.LBFGS = opt) -> torch.Tensor:
                opt.zero_grad()
                z = (w.exp().view(-1, 1, 1) * logp[: k + 1]).sum(0) + b
                loss = F.cross_entropy(z, labels)
                loss.backward()
                return loss

            opt.step(closure)
            self.weights_.append([max(float(v), -50.0) for v in w.detach()])
            self.bias_.append([float(v) for v in b.detach()])

    def step(self, k: int, logits: Sequence[torch.Tensor]) -> torch.Tensor:
        z = torch.tensor(self.bias_[k], dtype=torch.float32, device=logits[0].device).expand_as(logits[0]).clone()
        for j in range(k + 1):
            z = z + math.exp(self.weights_[k][j]) * F.log_softmax(logits[j].float(), dim=1)
        return F.softmax(z, dim=1)

    def _state(self) -> dict[str, Any]:
        return {"weights": self.weights_, "bias": self.bias_}

    def _load(self, state: dict[str, Any]) -> None:
        self.weights_, self.bias_ = state["weights"], state["bias"]


class InternalEnsemble(ExitCombiner):
    """MIE. Fitted: ``temperatures_`` (``[K]``) and ``costs_`` (``[K]``, the ensemble's weights)."""

    name = "mie"

    def _fit(self, logits: torch.Tensor, labels: torch.Tensor, costs: list[float]) -> None:
        self.costs_, self.temperatures_ = costs, []
        for k in range(logits.shape[0]):
            best = min(_GRID.tolist(), key=lambda t: _nll(self._mean(k, logits[: k + 1], [*self.temperatures_, t]), labels))
            self.temperatures_.append(float(best))

    def _mean(self, k: int, logits: Sequence[torch.Tensor], temps: Sequence[float]) -> torch.Tensor:
        acc = torch.zeros_like(logits[0], dtype=torch.float32)
        for j in range(k + 1):
            acc = acc + self.costs_[j] * F.softmax(logits[j].float() / temps[j], dim=1)
        return acc / sum(self.costs_[: k + 1])

    def step(self, k: int, logits: Sequence[torch.Tensor]) -> torch.Tensor:
        return self._mean(k, logits, self.temperatures_)

    def _state(self) -> dict[str, Any]:
        return {"temperatures": self.temperatures_, "costs": self.costs_}

    def _load(self, state: dict[str, Any]) -> None:
        self.temperatures_, self.costs_ = [float(t) for t in state["temperatures"]], [float(c) for c in state["costs"]]


class ProductAnytime(ExitCombiner):
    """Product anytime on raw logits. Fitted: ``exponents_`` (``[K]``, the common ``a_k`` of exit ``k``'s product)."""

    name = "pa"

    def _fit(self, logits: torch.Tensor, labels: torch.Tensor, costs: list[float]) -> None:
        self.exponents_ = []
        for k in range(logits.shape[0]):
            zs = [logits[j] for j in range(k + 1)]
            self.exponents_.append(float(min(_GRID.tolist(), key=lambda a: _nll(self._product(k, zs, a), labels))))

    @staticmethod
    def _product(k: int, logits: Sequence[torch.Tensor], a: float) -> torch.Tensor:
        s = torch.zeros_like(logits[0], dtype=torch.float32)
        for j in range(k + 1):
            s = s + a * torch.log(logits[j].float().clamp_min(0))  # -inf where a logit is <= 0
        some = torch.isfinite(s).any(dim=1, keepdim=True)
        return F.softmax(torch.where(some, s, logits[k].float()), dim=1)

    def step(self, k: int, logits: Sequence[torch.Tensor]) -> torch.Tensor:
        return self._product(k, logits, self.exponents_[k])

    def _state(self) -> dict[str, Any]:
        return {"exponents": self.exponents_}

    def _load(self, state: dict[str, Any]) -> None:
        self.exponents_ = [float(a) for a in state["exponents"]]


COMBINERS: dict[str, type[ExitCombiner]] = {c.name: c for c in (ZeroTimeWaste, InternalEnsemble, ProductAnytime)}


def make_combiner(name: str) -> ExitCombiner:
    """A new, unfitted combiner of ``name`` (a key of :data:`COMBINERS`)."""
    if name not in COMBINERS:
        raise ValueError(f"unknown combiner {name!r}; known: {sorted(COMBINERS)}")
    return COMBINERS[name]()


def combiner_from_json(d: dict[str, Any]) -> ExitCombiner:
    """The fitted combiner of a :meth:`ExitCombiner.to_json` dict."""
    if not isinstance(d, dict) or d.get("name") not in COMBINERS:
        raise ValueError(f"not a combiner: want a dict with name one of {sorted(COMBINERS)}")
    return COMBINERS[d["name"]].from_json(d)


def split_method(method: str) -> tuple[str | None, str]:
    """``"ztw+maxpred"`` -> ``("ztw", "maxpred")``; ``"maxpred"`` -> ``(None, "maxpred")``."""
    if "+" not in method:
        return None, method
    comb, base = method.split("+", 1)
    if comb not in COMBINERS:
        raise ValueError(f"unknown combiner {comb!r} in method {method!r}; known: {sorted(COMBINERS)}")
    return comb, base


def fit_combined(method: str, params: dict[str, Any], probs: torch.Tensor, logits: torch.Tensor | None, labels: torch.Tensor,
                 costs: Sequence[float], budget: float) -> Any:  # fmt: skip
    """Fit ``method`` (a policy, or ``"<combiner>+<policy>"``) on validation: the combiner first (on ``logits
    [K, N, C]``), then the policy on the combined probabilities (else on ``probs [K, N, C]``). ``params``: the
    policy's hyper-parameters (those it does not take are left out). Returns the fitted policy (``combiner_`` set)."""
    (fitted,) = fit_budgets(method, params, probs, logits, labels, costs, [budget])
    if isinstance(fitted, Exception):
        raise fitted
    return fitted


def fit_budgets(method: str, params: dict[str, Any], probs: torch.Tensor, logits: torch.Tensor | None, labels: torch.Tensor,
                costs: Sequence[float], budgets: Sequence[float]) -> list[Any]:  # fmt: skip
    """:func:`fit_combined` at every budget of ``budgets`` (ms per sample), the combiner fitted once (it does not
    depend on the budget) and each budget's policy fitted anew, as a job of its own would. Returns one entry per
    budget: the fitted policy, or the :class:`~eenet.schedulers.InfeasibleBudgetError` that budget raised."""
    from eenet.schedulers import InfeasibleBudgetError, accepted_params, make_scheduler

    comb, base = split_method(method)
    combiner = None
    if comb is not None:
        if logits is None:
            raise ValueError(f"{method} needs the raw logits of every exit; this cache has none: re-run snakemake --forcerun cache_logits")
        combiner = make_combiner(comb).fit(logits, labels, costs)
        probs = combiner.transform(logits)
    fitted: list[Any] = []
    for budget in budgets:
        sched = make_scheduler(base, **accepted_params(base, params))
        try:
            sched.fit(probs, labels, costs, budget)
        except InfeasibleBudgetError as exc:
            fitted.append(exc)
            continue
        if combiner is not None:
            sched.combiner_ = combiner
        fitted.append(sched)
    return fitted


def policy_outputs(sched: Any, tensors: dict[str, torch.Tensor], path: str = "the cache") -> torch.Tensor:
    """What a fitted policy reads on a cache: its combiner's probabilities of ``tensors["logits"]`` if it has one,
    else ``tensors["probs"]`` (``[K, N, C]``). An old cache without logits: a clear error naming the rule to re-run."""
    combiner = getattr(sched, "combiner_", None)
    if combiner is None:
        return tensors["probs"]
    if "logits" not in tensors:
        raise ValueError(f"{path} has no raw logits (written before they were cached): re-run snakemake --forcerun cache_logits")
    return combiner.transform(tensors["logits"])
