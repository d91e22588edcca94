"""Exit combiners: new probabilities at exit ``k`` from the raw logits of exits ``0..k``.

A combiner is fitted on validation only (``fit(logits [K, N, C], labels [N], costs [K])``) and then maps the logits
of the exits run so far to probabilities at the last of them: :meth:`ExitCombiner.step` (``k+1`` tensors ``[B, C]``
-> ``[B, C]``) and :meth:`ExitCombiner.transform` (``[K, N, C] -> [K, N, C]``), the same steps on the cache. The
step is incremental: :meth:`ExitCombiner.prepare` turns an exit's logits into what the combiner reads of it (its
log-softmax, ...) once, when the exit has run, and :meth:`ExitCombiner.combine` combines the kept results of exits
``0..k``; the adaptive runtime calls the two (through :meth:`eenet.schedulers.ExitScheduler.exit_state` and
:meth:`~eenet.schedulers.ExitScheduler.outputs_from_states`), so no exit's work is redone at a later one. All of them
run the same float32 arithmetic, row by row, so the runtime's decisions equal the cached evaluation's.

A combiner composes with every exit policy as one policy, :class:`eenet.schedulers.CombinedPolicy` (the policy
``"<combiner>+<method>"``, ``ztw_ens+maxpred``): the combiner is fitted first, then the method on the combined validation
probabilities; its JSON file holds both. This module knows nothing of the policies.

- ``ztw_ens``: Zero Time Waste's ensembling half alone, a geometric weighted ensemble:
  ``z_k = sum_{j<=k} exp(w_kj) log p_j + b_k``, ``w`` and the per-class ``b`` fitted by cross-entropy. Not ZTW: no
  cascade (ZTW's exit heads also read the previous heads' outputs) and fitted on validation, not training data.
- ``mie``: model-internal ensemble with per-exit temperatures: the cost-weighted running mean of
  ``softmax(z_j / T_j)``, each ``T_j`` chosen in turn to minimise the ensemble's validation NLL at exit ``j``.
- ``pa``: product anytime (Jazbec et al., NeurIPS 2023): ``prod_{j<=k} max(z_j, 0)^{a_k w_j}``, renormalised (the
  softmax of exit ``k`` when every class is zero), with the paper's per-exit weights ``w_j = (j+1)/K``; the common
  exponent ``a_k`` is chosen on validation NLL (it changes confidences, not the argmax).
- ``best``: anytime caching ("best so far"): the softmax of the most confident exit among ``0..k`` (largest max class
  probability; a tie goes to the later exit). Nothing fitted.
- ``geo``: unweighted geometric mean: ``softmax(mean_{j<=k} log_softmax(z_j))`` (``ztw_ens`` without its learned
  weights and biases). Nothing fitted.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from eenet.catalog import COMBINERS as DECLARED
from eenet.catalog import FORMER_COMBINERS

__all__ = ["ExitCombiner", "COMBINERS", "make_combiner", "combiner_from_json", "policy_outputs"]

_GRID = torch.logspace(-1.5, 1.5, 61, dtype=torch.float64)  # temperatures / exponents tried (0.03 .. 32)


def _nll(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-likelihood of ``probs [N, C]`` at ``labels [N]``."""
    return float(-torch.log(probs.double().gather(1, labels.view(-1, 1)).clamp_min(1e-12)).mean())


def _check(logits: torch.Tensor, labels: torch.Tensor | None = None) -> None:
    if logits.dim() != 3 or (labels is not None and labels.shape[0] != logits.shape[1]):
        raise ValueError(f"combiner wants logits [K, N, C] and labels [N]; got {tuple(logits.shape)} and {tuple(labels.shape)}")


class ExitCombiner(abc.ABC):
    """Base class: subclasses set ``name``, implement :meth:`_fit`, :meth:`prepare` (if not the float logits),
    :meth:`combine`, :meth:`_state`, :meth:`_load`."""

    name: ClassVar[str] = ""
    num_exits_: int

    def fit(self, logits: torch.Tensor, labels: torch.Tensor, costs: Sequence[float] | None = None) -> ExitCombiner:
        """Fit on validation ``logits [K, N, C]``, ``labels int64 [N]``; ``costs [K]`` (cumulative cost per exit)."""
        _check(logits, labels)
        self.num_exits_ = int(logits.shape[0])
        self.__dict__.pop("_tensor_cache", None)  # the state is about to change
        c = [1.0] * self.num_exits_ if costs is None else [float(v) for v in costs]
        if len(c) != self.num_exits_:
            raise ValueError(f"{len(c)} costs for {self.num_exits_} exits")
        self._fit(logits.float(), labels.long(), c)
        return self

    @abc.abstractmethod
    def _fit(self, logits: torch.Tensor, labels: torch.Tensor, costs: list[float]) -> None: ...

    def prepare(self, j: int, logits: torch.Tensor) -> torch.Tensor:
        """What :meth:`combine` reads of exit ``j``, from its raw logits ``[B, C]``: computed once, when the exit has run,
        and kept for every later exit (a log-softmax, a tempered softmax, ...): ``[B, C]`` float32, rows the samples."""
        return logits.float()

    @abc.abstractmethod
    def combine(
        self, k: int, prepared: Sequence[torch.Tensor], logits: torch.Tensor, tensors: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Probabilities ``[B, C]`` at exit ``k`` from :meth:`prepare` of exits ``0..k`` (``k+1`` tensors ``[B, C]``) and
        exit ``k``'s raw logits ``[B, C]``: the incremental step the runtime runs (nothing of an earlier exit recomputed).
        ``tensors``: what :meth:`tensors` gives (an exported program passes its buffers); ``None``: made once a device."""

    def step(self, k: int, logits: Sequence[torch.Tensor], tensors: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Probabilities ``[B, C]`` at exit ``k`` from the raw logits of exits ``0..k`` (``k+1`` tensors ``[B, C]``):
        :meth:`combine` of their :meth:`prepare` (the same float32 arithmetic, so the same values)."""
        return self.combine(k, [self.prepare(j, logits[j]) for j in range(k + 1)], logits[k], tensors)

    def _tensor_state(self) -> dict[str, torch.Tensor]:
        """What :meth:`step` reads as tensors (float32, on the CPU); none by default."""
        return {}

    def tensors(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """The fitted state :meth:`step` reads as tensors, on ``device``: made once a device and kept (the runtime
        asks at every exit of every sample)."""
        cache = self.__dict__.setdefault("_tensor_cache", {})
        key = str(device)
        if key not in cache:
            cache[key] = {name: t.to(device) for name, t in self._tensor_state().items()}
        return cache[key]

    def transform(self, logits: torch.Tensor) -> torch.Tensor:
        """``[K, N, C]`` logits -> ``[K, N, C]`` combined probabilities (float32), every exit's :meth:`step`."""
        _check(logits)
        if logits.shape[0] != self.num_exits_:
            raise ValueError(f"{self.name} combiner was fitted for {self.num_exits_} exits, got logits of shape {tuple(logits.shape)}")
        z = [logits[k].float() for k in range(logits.shape[0])]
        prepared = [self.prepare(j, z[j]) for j in range(len(z))]  # once per exit, as the runtime does
        return torch.stack([self.combine(k, prepared[: k + 1], z[k]) for k in range(len(z))])

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


class ZeroTimeWasteEnsemble(ExitCombiner):
    """Zero Time Waste's geometric weighted ensemble, without its cascade, fitted on validation. Fitted: ``weights_``
    (``[K][k+1]``, the ``w_kj``), ``bias_`` (``[K][C]``)."""

    name = "ztw_ens"

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

    def _tensor_state(self) -> dict[str, torch.Tensor]:
        return {"bias": torch.tensor(self.bias_, dtype=torch.float32)}  # [K, C]

    def prepare(self, j: int, logits: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(logits.float(), dim=1)

    def combine(
        self, k: int, prepared: Sequence[torch.Tensor], logits: torch.Tensor, tensors: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        bias = (self.tensors(logits.device) if tensors is None else tensors)["bias"][k]
        z = bias.expand_as(prepared[0]).clone()
        for j in range(k + 1):
            z = z + math.exp(self.weights_[k][j]) * prepared[j]
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

    def prepare(self, j: int, logits: torch.Tensor) -> torch.Tensor:
        return F.softmax(logits.float() / self.temperatures_[j], dim=1)

    def combine(
        self, k: int, prepared: Sequence[torch.Tensor], logits: torch.Tensor, tensors: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        acc = torch.zeros_like(prepared[0], dtype=torch.float32)
        for j in range(k + 1):
            acc = acc + self.costs_[j] * prepared[j]  # _mean's arithmetic on the kept tempered softmaxes
        return acc / sum(self.costs_[: k + 1])

    def _state(self) -> dict[str, Any]:
        return {"temperatures": self.temperatures_, "costs": self.costs_}

    def _load(self, state: dict[str, Any]) -> None:
        self.temperatures_, self.costs_ = [float(t) for t in state["temperatures"]], [float(c) for c in state["costs"]]


class ProductAnytime(ExitCombiner):
    """Product anytime on raw logits (Jazbec et al., NeurIPS 2023, their ``anytime_product`` with ``fall_back``): at exit
    ``k``, ``prod_{j<=k} max(z_j, 0)^(a_k * w_j)`` renormalised, the softmax of exit ``k`` where every class is zero.
    ``weights_`` (``[K]``): the paper's per-exit weights ``w_j = (j+1)/K`` (the same in every product the exit enters);
    ``exponents_`` (``[K]``): ``a_k``, fitted on validation NLL (a common exponent: it sets the confidence at exit ``k``,
    not its argmax, which is the paper's). A file fitted before the weights were added has none: uniform ``w_j = 1``,
    the outputs its policy was fitted on."""

    name = "pa"

    def _fit(self, logits: torch.Tensor, labels: torch.Tensor, costs: list[float]) -> None:
        n = logits.shape[0]
        self.weights_ = [(j + 1) / n for j in range(n)]
        self.exponents_ = []
        for k in range(n):
            zs = [logits[j] for j in range(k + 1)]
            self.exponents_.append(float(min(_GRID.tolist(), key=lambda a: _nll(self._product(k, zs, a, self.weights_), labels))))

    @staticmethod
    def _product(k: int, logits: Sequence[torch.Tensor], a: float, weights: Sequence[float]) -> torch.Tensor:
        """``[B, C]`` probabilities at exit ``k`` from ``k+1`` logits ``[B, C]``, exponent ``a``, per-exit ``weights [K]``."""
        return ProductAnytime._combine(k, [ProductAnytime._log_positive(z) for z in logits[: k + 1]], logits[k], a, weights)

    @staticmethod
    def _log_positive(logits: torch.Tensor) -> torch.Tensor:
        """``log max(z, 0)`` of logits ``[B, C]`` (``-inf`` where a logit is <= 0)."""
        return torch.log(logits.float().clamp_min(0))

    @staticmethod
    def _combine(k: int, logs: Sequence[torch.Tensor], logits: torch.Tensor, a: float, weights: Sequence[float]) -> torch.Tensor:
        s = torch.zeros_like(logs[0], dtype=torch.float32)
        for j in range(k + 1):
            s = s + (a * weights[j]) * logs[j]
        some = torch.isfinite(s).any(dim=1, keepdim=True)
        return F.softmax(torch.where(some, s, logits.float()), dim=1)

    def prepare(self, j: int, logits: torch.Tensor) -> torch.Tensor:
        return self._log_positive(logits)

    def combine(
        self, k: int, prepared: Sequence[torch.Tensor], logits: torch.Tensor, tensors: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        return self._combine(k, prepared, logits, self.exponents_[k], self.weights_)

    def _state(self) -> dict[str, Any]:
        return {"exponents": self.exponents_, "weights": self.weights_}

    def _load(self, state: dict[str, Any]) -> None:
        self.exponents_ = [float(a) for a in state["exponents"]]
        self.weights_ = [float(w) for w in state.get("weights", [1.0] * len(self.exponents_))]


class _Unfitted(ExitCombiner):
    """A combiner with nothing to learn beyond the number of exits."""

    def _fit(self, logits: torch.Tensor, labels: torch.Tensor, costs: list[float]) -> None:
        pass

    def _state(self) -> dict[str, Any]:
        return {}

    def _load(self, state: dict[str, Any]) -> None:
        pass


class BestSoFar(_Unfitted):
    """Anytime caching: at exit ``k``, ``softmax(z_j)`` of the ``j <= k`` with the largest max class probability; on a
    tie, the later exit (the deeper one, which a tie should not cost)."""

    name = "best"

    def prepare(self, j: int, logits: torch.Tensor) -> torch.Tensor:
        return F.softmax(logits.float(), dim=1)

    def combine(
        self, k: int, prepared: Sequence[torch.Tensor], logits: torch.Tensor, tensors: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        best = prepared[0]
        conf = best.max(dim=1).values
        for j in range(1, k + 1):
            p = prepared[j]
            c = p.max(dim=1).values
            later = c >= conf
            best, conf = torch.where(later.unsqueeze(1), p, best), torch.where(later, c, conf)
        return best


class GeometricMean(_Unfitted):
    """Unweighted geometric mean of the exits so far: ``softmax(sum_{j<=k} log_softmax(z_j) / (k+1))``."""

    name = "geo"

    def prepare(self, j: int, logits: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(logits.float(), dim=1)

    def combine(
        self, k: int, prepared: Sequence[torch.Tensor], logits: torch.Tensor, tensors: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        s = torch.zeros_like(prepared[0], dtype=torch.float32)
        for j in range(k + 1):
            s = s + prepared[j]
        return F.softmax(s / (k + 1), dim=1)


COMBINERS: dict[str, type[ExitCombiner]] = {
    c.name: c for c in (ZeroTimeWasteEnsemble, InternalEnsemble, ProductAnytime, BestSoFar, GeometricMean)
}
"""The combiner classes by name: exactly the names of :data:`eenet.catalog.COMBINERS` (checked at import)."""
if set(COMBINERS) != set(DECLARED):
    raise ImportError(f"eenet.combiners defines {sorted(COMBINERS)} but eenet.catalog.COMBINERS declares {sorted(DECLARED)}")


def make_combiner(name: str) -> ExitCombiner:
    """A new, unfitted combiner of ``name`` (a key of :data:`COMBINERS`)."""
    if name not in COMBINERS:
        raise ValueError(f"unknown combiner {name!r}; known: {sorted(COMBINERS)}")
    return COMBINERS[name]()


def combiner_from_json(d: dict[str, Any]) -> ExitCombiner:
    """The fitted combiner of a :meth:`ExitCombiner.to_json` dict (one saved under a former name, ``ztw``, is read
    under the name now: :data:`eenet.catalog.FORMER_COMBINERS`)."""
    name = d.get("name") if isinstance(d, dict) else None
    name = FORMER_COMBINERS.get(name, name)
    if name not in COMBINERS:
        raise ValueError(f"not a combiner: want a dict with name one of {sorted(COMBINERS)}")
    return COMBINERS[name].from_json(d)


def policy_outputs(sched: Any, tensors: dict[str, torch.Tensor], path: str = "the cache") -> torch.Tensor:
    """Deprecated spelling of :meth:`eenet.schedulers.ExitScheduler.outputs` (kept while callers move)."""
    return sched.outputs(tensors, path)
