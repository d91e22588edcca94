"""Guaranteed policies (eenet.schedulers.guarantee): the bound, the guarantee on synthetic outputs whose truth is
known, the runtime running them unchanged, and the JSON round trip."""

from __future__ import annotations

import math

import pytest
import torch
import yaml
from helpers import COSTS, cached_probs, make_inputs, make_probs

from eenet.measure.runtime import adaptive_forward
from eenet.models import build_model
from eenet.schedulers import InfeasibleBudgetError, assign_by_thresholds, make_scheduler, scheduler_from_json
from eenet.schedulers.guarantee import family_exits, pvalue, threshold_family, upper_bound

GUARDS = ["maxpred_guard", "entropy_guard", "maxpred_ts_guard", "entropy_ts_guard"]


# ---------------------------------------------------------------------------------------------------
# the bound


def test_upper_bound_covers_the_mean_and_shrinks_with_the_sample_size():
    for risk in (0.0, 0.1, 0.25, 0.5):
        bounds = [upper_bound(risk, n, 0.05) for n in (20, 40, 100, 200, 400, 1000, 2000, 4000)]  # n * risk whole
        assert all(b >= risk for b in bounds)
        assert all(b1 < b0 for b0, b1 in zip(bounds, bounds[1:], strict=False)), bounds
        assert bounds[-1] - risk < 0.03  # and it closes in on the mean
    # Hoeffding's alone: monotone for every n; the combined bound is never looser than it
    h = [upper_bound(0.1234, n, 0.05, "hoeffding") for n in range(30, 3000, 97)]
    assert all(b1 < b0 for b0, b1 in zip(h, h[1:], strict=False))
    assert upper_bound(0.1, 1000, 0.05) <= upper_bound(0.1, 1000, 0.05, "hoeffding")
    # a smaller delta, a larger bound
    assert upper_bound(0.1, 1000, 0.01) > upper_bound(0.1, 1000, 0.05)


def test_pvalue_is_valid_for_bernoulli_losses():
    """P(p-value <= δ) <= δ when the true risk equals the target: 4,000 draws of 300 Bernoulli(0.2) losses."""
    g = torch.Generator().manual_seed(0)
    sums = (torch.rand(4000, 300, generator=g) < 0.2).double().sum(dim=1)
    rate = float((pvalue(sums, 300, 0.2) <= 0.05).double().mean())
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 4000)
    assert float(pvalue(torch.tensor([0.0]), 300, 0.2)) < 1e-10  # no loss at all: certified
    assert float(pvalue(torch.tensor([90.0]), 300, 0.2)) == 1.0  # mean above the target: never


def test_threshold_family_is_ordered_and_spans_the_exits(val_data):
    probs, labels = val_data
    plain = make_scheduler("maxpred").fit(probs, labels, COSTS, 0.6)
    lambdas = torch.linspace(-1, 1, 41)
    family = threshold_family(torch.tensor(plain.thresholds_), lambdas)
    assert bool((family[1:, :-1] >= family[:-1, :-1]).all())  # every threshold grows with λ
    exits = family_exits(plain.scores(probs), family)
    assert bool((exits[1:] >= exits[:-1]).all())  # so every sample's exit does
    assert bool((exits[0] == 0).all()) and bool((exits[-1] == 2).all())
    for g in range(0, 41, 5):
        assert torch.equal(exits[g], assign_by_thresholds(plain.scores(probs), family[g]))


# ---------------------------------------------------------------------------------------------------
# the guarantee, where the truth is known


def uniform_scores(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes, three exits; exit k's max probability is an independent Uniform(0.5, 1) draw, so a threshold
    policy's expected cost is known exactly (:func:`true_cost`)."""
    g = torch.Generator().manual_seed(seed)
    s = 0.5 + 0.5 * torch.rand(3, n, generator=g)
    labels = torch.randint(0, 2, (n,), generator=g)
    top = torch.randint(0, 2, (3, n), generator=g)
    probs = torch.stack([torch.where(top == 0, s, 1 - s), torch.where(top == 0, 1 - s, s)], dim=-1)
    return probs.float(), labels


def true_cost(thresholds: list[float], costs: list[float]) -> float:
    """``c0 + (c1 - c0) F(T0) + (c2 - c1) F(T0) F(T1)`` with ``F`` the Uniform(0.5, 1) distribution function."""

    def stays(t: float) -> float:
        return min(1.0, max(0.0, (t - 0.5) / 0.5))

    f0, f1 = stays(thresholds[0]), stays(thresholds[1])
    return costs[0] + (costs[1] - costs[0]) * f0 + (costs[2] - costs[1]) * f0 * f1


def test_cost_guarantee_holds_over_200_draws_and_the_plain_policy_breaks_it():
    delta, budget, draws, n = 0.05, 0.6, 200, 2000
    plain_over, guard_over, guard_costs = 0, 0, []
    for r in range(draws):
        probs, labels = uniform_scores(n, seed=r)
        plain = make_scheduler("maxpred").fit(probs, labels, COSTS, budget)
        guard = make_scheduler("maxpred_guard", cost={"delta": delta}, seed=r).fit(probs, labels, COSTS, budget)
        plain_over += true_cost(plain.thresholds_, COSTS) > budget
        cost = true_cost(guard.thresholds_, COSTS)
        guard_over += cost > budget
        guard_costs.append(cost)
    margin = 2.33 * math.sqrt(delta * (1 - delta) / draws)  # one-sided 99 % binomial sampling margin
    assert guard_over / draws <= delta + margin, (guard_over, plain_over)
    assert plain_over / draws >= 0.25 and plain_over / draws > guard_over / draws + margin  # fitted tight to the budget
    assert sum(guard_costs) / draws > 0.9 * budget  # the price: ~5 % of the budget with 1,000 calibration samples


def test_accuracy_loss_guarantee_holds_over_200_draws():
    """Disagreement with the last exit, whose truth is estimated on 200,000 fresh samples."""
    eps, delta, draws, n = 0.03, 0.05, 200, 2000
    big, _ = make_probs(200_000, seed=999)
    preds = big.argmax(dim=2)  # [K, 200,000]: each exit's answers, read once
    last = preds[-1]
    over = 0
    for r in range(draws):
        probs, labels = make_probs(n, seed=1000 + r)
        guard = make_scheduler("maxpred_guard", accuracy_loss={"epsilon": eps, "delta": delta}, seed=r).fit(probs, labels, COSTS, 1.0)
        exits = guard.assign(big)
        loss = float((preds.gather(0, exits.view(1, -1)).squeeze(0) != last).double().mean())
        over += loss > eps
        assert guard.guarantee_["upper_bound"] <= eps
    assert over / draws <= delta + 2.33 * math.sqrt(delta * (1 - delta) / draws)


def test_a_budget_below_every_certified_setting_is_infeasible(val_data):
    probs, labels = val_data
    with pytest.raises(InfeasibleBudgetError, match="cheapest setting certified"):
        make_scheduler("maxpred_guard", accuracy_loss={"epsilon": 0.02}).fit(probs, labels, COSTS, 0.31)
    with pytest.raises(InfeasibleBudgetError, match="no setting is certified"):  # 1,000 samples cannot certify 0.1 %
        make_scheduler("maxpred_guard", accuracy_loss={"epsilon": 0.001}).fit(probs, labels, COSTS, 1.0)
    # 20 calibration samples: even every sample at exit 0 is not certified
    with pytest.raises(InfeasibleBudgetError, match="no setting is certified"):
        make_scheduler("maxpred_guard").fit(probs[:, :40], labels[:40], COSTS, 0.38)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="not both"):
        make_scheduler("maxpred_guard", cost={}, accuracy_loss={})
    with pytest.raises(ValueError, match="delta"):
        make_scheduler("entropy_guard", cost={"delta": 1.5})
    with pytest.raises(ValueError, match="loss must be one of"):
        make_scheduler("maxpred_guard", accuracy_loss={"loss": "bigger"})


# ---------------------------------------------------------------------------------------------------
# the runtime, JSON


@pytest.mark.parametrize("method", GUARDS)
def test_guarded_policies_round_trip_and_run_in_the_runtime(val_data, test_data, method):
    probs, labels = val_data
    sched = make_scheduler(method, accuracy_loss={"epsilon": 0.05, "loss": "worse"}).fit(probs, labels, COSTS, 0.8)
    again = scheduler_from_json(yaml.safe_load(yaml.safe_dump(sched.to_json())))
    assert again.get_params() == sched.get_params() and again.guarantee_ == sched.guarantee_
    assert torch.equal(again.assign(test_data[0]), sched.assign(test_data[0]))
    torch.manual_seed(0)
    model = build_model("small_cnn_3", 10, 1, width=4).double().eval()
    val = cached_probs(model, make_inputs(("image", 1, 28), 200, 1))
    fitted = make_scheduler(method, seed=3).fit(val, torch.randint(0, 10, (200,)), COSTS, 0.7)
    x = make_inputs(("image", 1, 28), 40, 3)
    want = fitted.assign(cached_probs(model, x))
    _, exits = adaptive_forward(model, fitted, x)
    assert torch.equal(exits, want)
    for i in range(0, 40, 7):  # batch 1
        assert int(adaptive_forward(model, fitted, x[i : i + 1])[1]) == int(want[i])


def test_schema_defaults_are_the_code_defaults():
    import inspect
    from pathlib import Path

    from eenet.schedulers.guarantee import GuaranteeMixin, guarantee_spec

    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    props = schema["properties"]["benchmarks"]["additionalProperties"]["properties"]["guarantee"]["properties"]
    code = {k: p.default for k, p in inspect.signature(GuaranteeMixin.__init__).parameters.items() if k not in ("self", "seed")}
    assert {k: props[k]["default"] for k in ("shape_fraction", "grid", "bound")} == {
        k: code[k] for k in ("shape_fraction", "grid", "bound")
    }
    assert code["cost"] is None and code["accuracy_loss"] is None  # neither: cost at the default delta
    assert guarantee_spec(None, None)["delta"] == props["cost"]["properties"]["delta"]["default"]
    acc = guarantee_spec(None, {})
    assert {k: acc[k] for k in ("epsilon", "delta", "loss")} == {k: v["default"] for k, v in props["accuracy_loss"]["properties"].items()}
