"""A learned post-hoc deferral rule (Jitkrittum et al., NeurIPS 2023, "When Does Confidence-Based Cascade Deferral
Suffice?"): at each exit a small model, fitted on validation, predicts from the probabilities of the exits run so
far how much continuing gains in correctness; a sample leaves where the predicted gain is low.

The paper's post-hoc rule regresses, with the squared loss, the gain ``1[the later model is right] - 1[this one is
right]`` (its ``Diff-01`` target) on features of the probabilities. Here, at exit ``k < K - 1``:

- features ``x_k`` of exits ``0..k`` (:func:`exit_features`): each exit's max probability, margin (largest minus
  second largest probability) and ``1 - H(p)/log C``, and whether each earlier exit predicts exit ``k``'s class;
  standardised with the validation mean and deviation;
- target ``z_k`` (``target``): ``last``, ``1[exit K-1 right] - 1[exit k right]`` (the gain of running the rest of the
  network); ``next``, ``1[exit k+1 right] - 1[exit k right]`` (the paper's two-model rule between neighbours);
  ``later``, ``1[exit k wrong and a later exit right]``;
- model ``g_k``: a one-hidden-layer tanh MLP (``hidden`` units; 0: linear), full-batch Adam on the squared loss,
  initialised from ``seed`` (deterministic).

The score of exit ``k`` is ``-g_k(x_k)`` (higher: less to gain, leave), turned into thresholds as MSDNet's
(:func:`~eenet.schedulers.base.thresholds_for_distribution`, a geometric exit distribution, ``ρ`` searched so that the
realised validation cost is the largest within the budget: :func:`~eenet.schedulers.base.search_budget`).

Shapes: ``probs`` ``[K, N, C]`` (the softmax of every exit); features ``[N, F_k]`` with ``F_k = 3(k+1) + k``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from eenet.schedulers.base import ExitScheduler, assign_by_thresholds, register_method, search_budget
from eenet.schedulers.scores import entropy_score

__all__ = ["TARGETS", "exit_features", "deferral_targets", "DeferralScheduler"]

TARGETS = ("last", "next", "later")
"""What the rule at exit ``k`` predicts (module docstring)."""


def exit_features(probs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """Features ``[B, 3(k+1) + k]`` (float64) of the probabilities of exits ``0..k`` (``[k+1, B, C]`` or ``k+1``
    tensors ``[B, C]``): per exit its max probability, margin and ``1 - H(p)/log C``, then per earlier exit ``j < k``
    whether ``argmax p_j == argmax p_k`` (0 or 1)."""
    ps = [p.double() for p in probs]
    cols = []
    for p in ps:
        top = torch.topk(p, min(2, p.shape[-1]), dim=-1).values
        cols += [top[:, 0], top[:, 0] - (top[:, 1] if top.shape[1] > 1 else 0.0), entropy_score(p)]
    last = ps[-1].argmax(dim=-1)
    cols += [(p.argmax(dim=-1) == last).double() for p in ps[:-1]]
    return torch.stack(cols, dim=1)


def deferral_targets(correct: torch.Tensor, k: int, target: str) -> torch.Tensor:
    """``z_k [N]`` (float64) of ``correct [K, N]`` (whether each exit is right): what exit ``k``'s rule predicts."""
    c = correct.double()
    if target == "last":
        return c[-1] - c[k]
    if target == "next":
        return c[k + 1] - c[k]
    if target == "later":
        return (1 - c[k]) * c[k + 1 :].amax(dim=0)
    raise ValueError(f"unknown deferral target {target!r}; known: {TARGETS}")


def _init_layers(sizes: list[int], gen: torch.Generator) -> list[list[torch.Tensor]]:
    """``[[W [out, in], b [out]], ...]`` (float64) drawn as torch's ``nn.Linear`` draws them, from ``gen``."""
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1.0 / math.sqrt(n_in)
        w = (torch.rand(n_out, n_in, generator=gen, dtype=torch.float64) * 2 - 1) * bound
        b = (torch.rand(n_out, generator=gen, dtype=torch.float64) * 2 - 1) * bound
        layers.append([w, b])
    return layers


def _forward(layers: Sequence[Sequence[torch.Tensor]], x: torch.Tensor) -> torch.Tensor:
    """The MLP ``[B, F] -> [B]``: affine layers with tanh between them."""
    h = x
    for i, (w, b) in enumerate(layers):
        h = F.linear(h, w, b)
        if i < len(layers) - 1:
            h = torch.tanh(h)
    return h[:, 0]


@register_method
class DeferralScheduler(ExitScheduler):
    """Post-hoc learned deferral (Jitkrittum et al., 2023): per exit a small model predicts the gain of continuing;
    thresholds on it meet the budget (module docstring).

    Hyper-parameters: ``target`` (a key of :data:`TARGETS`), ``hidden`` (units of the MLP's hidden layer; 0: a linear
    model), ``epochs`` (full-batch Adam steps), ``lr``, ``weight_decay``, ``seed`` (the models' initialisation).
    Fitted: ``rules_`` (per exit ``k < K - 1``: ``mean``/``std`` of its features ``[F_k]``, ``layers`` ``[[W, b], ...]``
    as nested lists), ``log_rho_``, ``thresholds_`` (``[K]``, on the score ``-g_k``).
    """

    method = "deferral"

    def __init__(
        self, target: str = "last", hidden: int = 16, epochs: int = 300, lr: float = 0.01, weight_decay: float = 0.0001, seed: int = 0
    ) -> None:
        self.target = target
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed
        if target not in TARGETS:
            raise ValueError(f"unknown deferral target {target!r}; known: {TARGETS}")
        if int(hidden) < 0 or int(epochs) < 1 or not float(lr) > 0 or float(weight_decay) < 0:
            raise ValueError(f"hidden >= 0, epochs >= 1, lr > 0 and weight_decay >= 0, got {hidden}, {epochs}, {lr}, {weight_decay}")

    # -- the rules ----------------------------------------------------------------------------------------
    def _fit_rule(self, x: torch.Tensor, z: torch.Tensor, gen: torch.Generator) -> dict[str, Any]:
        """One exit's rule from features ``x [N, F]`` and targets ``z [N]``: standardisation, then the MLP."""
        mean, std = x.mean(dim=0), x.std(dim=0, unbiased=False)
        std = torch.where(std > 1e-12, std, torch.ones_like(std))  # a constant feature stays 0
        sizes = [x.shape[1], int(self.hidden), 1] if int(self.hidden) > 0 else [x.shape[1], 1]
        with torch.inference_mode(False), torch.enable_grad():  # a fit inside inference mode trains all the same
            xs, z = ((x - mean) / std).clone(), z.clone()
            layers = _init_layers(sizes, gen)
            params = [t.requires_grad_() for layer in layers for t in layer]
            opt = torch.optim.Adam(params, lr=float(self.lr), weight_decay=float(self.weight_decay))
            for _ in range(int(self.epochs)):
                opt.zero_grad()
                loss = F.mse_loss(_forward(layers, xs), z)
                loss.backward()
                opt.step()
        return {"mean": mean.tolist(), "std": std.tolist(), "layers": [[w.detach().tolist(), b.detach().tolist()] for w, b in layers]}

    def _rule_tensors(self, k: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, list[list[torch.Tensor]]]:
        """Exit ``k``'s rule as float64 tensors on ``device`` (made once: the runtime asks at every exit)."""
        cache = self.__dict__.setdefault("_rule_cache", {})
        if (k, device) not in cache:
            r = self.rules_[k]

            def t(v: Any) -> torch.Tensor:
                return torch.tensor(v, dtype=torch.float64, device=device)

            cache[(k, device)] = (t(r["mean"]), t(r["std"]), [[t(w), t(b)] for w, b in r["layers"]])
        return cache[(k, device)]

    def predicted_gain(self, k: int, probs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """``g_k``: the predicted gain of continuing past exit ``k < K - 1`` from the probabilities of exits ``0..k``
        (``[k+1, B, C]`` or ``k+1`` tensors ``[B, C]``) -> ``[B]`` (float64)."""
        x = exit_features(probs)
        mean, std, layers = self._rule_tensors(k, x.device)
        return _forward(layers, (x - mean) / std)

    def scores(self, probs: torch.Tensor) -> torch.Tensor:
        """``[K, N, C]`` -> ``[K, N]`` (float64): ``-g_k`` at every exit but the last (0 there: its threshold is ``-inf``)."""
        out = torch.zeros(probs.shape[0], probs.shape[1], dtype=torch.float64, device=probs.device)
        for k in range(probs.shape[0] - 1):
            out[k] = -self.predicted_gain(k, probs[: k + 1])
        return out

    # -- the interface ------------------------------------------------------------------------------------
    def _fit(self, probs: torch.Tensor, labels: torch.Tensor, costs: torch.Tensor) -> None:
        self.__dict__.pop("_rule_cache", None)
        correct = probs.argmax(dim=2) == labels.view(1, -1)  # [K, N]
        gen = torch.Generator().manual_seed(int(self.seed))
        self.rules_ = [
            self._fit_rule(exit_features(probs[: k + 1]), deferral_targets(correct, k, self.target), gen)
            for k in range(self.num_exits_ - 1)
        ]
        ks = torch.arange(self.num_exits_, dtype=torch.float64)
        log_rho, th, _ = search_budget(self.scores(probs), lambda t: F.softmax(ks * t, dim=0), costs, self.budget_, -30.0, 30.0)
        self.log_rho_ = float(log_rho)
        self.thresholds_ = th.tolist()
        self.__dict__.pop("_threshold_cache", None)

    def assign(self, probs: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self._check_probs(probs)
        return assign_by_thresholds(self.scores(probs), torch.tensor(self.thresholds_, dtype=torch.float64, device=probs.device))

    def leaves(self, k: int, probs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        p = probs[k]
        if self._check_step(k, probs):
            return torch.ones(p.shape[0], dtype=torch.bool, device=p.device)
        return -self.predicted_gain(k, probs[: k + 1]) >= self._threshold64(k, p.device)

    def leaves_one(self, k: int, probs: Sequence[torch.Tensor]) -> bool:
        if k == self.num_exits_ - 1:
            return True
        return -float(self.predicted_gain(k, probs[: k + 1])[0]) >= self.thresholds_[k]

    def _threshold64(self, k: int, device: torch.device) -> torch.Tensor:
        """``thresholds_[k]`` as a float64 scalar on ``device`` (the scores are float64; made once)."""
        cache = self.__dict__.setdefault("_threshold_cache", {})
        if (k, device, "f64") not in cache:
            cache[(k, device, "f64")] = torch.tensor(self.thresholds_[k], dtype=torch.float64, device=device)
        return cache[(k, device, "f64")]

    @property
    def exit_distribution_(self) -> list[float]:
        """The fitted geometric ``q [K]``."""
        return F.softmax(torch.arange(self.num_exits_, dtype=torch.float64) * self.log_rho_, dim=0).tolist()

    # -- JSON ---------------------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "params": self.get_params(),
            "rules": self.rules_,
            "log_rho": self.log_rho_,
            "thresholds": self.thresholds_,
            "exit_distribution": self.exit_distribution_,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self.rules_ = [dict(r) for r in state["rules"]]
        self.log_rho_ = float(state["log_rho"])
        self.thresholds_ = [float(t) for t in state["thresholds"]]
