"""Exit combiners (eenet.combiners) on constructed outputs where the answer is known, composed with the policies."""

from __future__ import annotations

import json

import pytest
import torch

from eenet.catalog import split_method
from eenet.combiners import COMBINERS, make_combiner
from eenet.schedulers import METHODS, scheduler_from_json
from eenet.schedulers import fit_policy as fit_combined

C = 5


def views(n: int, strengths: list[float], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exits that are independent noisy views of the label: logits ``s_k * onehot(y) + N(0, 1)``, ``[K, n, C]``."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, C, (n,), generator=g)
    onehot = torch.nn.functional.one_hot(labels, C).float()
    logits = torch.stack([s * onehot + torch.randn(n, C, generator=g) for s in strengths])
    return logits, labels


def acc(probs: torch.Tensor, labels: torch.Tensor) -> list[float]:
    return (probs.argmax(2) == labels).float().mean(1).tolist()


@pytest.mark.parametrize("name", sorted(COMBINERS))
def test_an_ensemble_of_independent_views_beats_every_single_exit(name):
    strengths = [1.0, 1.2, 1.4, 1.6]
    val, yv = views(4000, strengths, 0)
    test, yt = views(4000, strengths, 1)
    comb = make_combiner(name).fit(val, yv, costs=[1.0, 2.0, 3.0, 4.0])
    single = acc(torch.softmax(test, 2), yt)
    combined = acc(comb.transform(test), yt)
    assert combined[-1] > max(single) + 0.02, (name, combined, single)


def test_ztw_puts_no_weight_on_uninformative_exits_and_equals_the_single_exit():
    val, yv = views(4000, [0.0, 0.0, 0.0, 2.0], 0)
    test, yt = views(4000, [0.0, 0.0, 0.0, 2.0], 1)
    comb = make_combiner("ztw").fit(val, yv)
    w = torch.tensor(comb.weights_[-1]).exp()
    assert (w[:3] < 0.05).all() and w[3] > 0.5, w
    agree = (comb.transform(test)[-1].argmax(1) == test[-1].argmax(1)).float().mean()
    assert agree > 0.98


def test_mie_flattens_uninformative_exits():
    val, yv = views(3000, [0.0, 0.0, 2.0], 0)
    comb = make_combiner("mie").fit(val, yv, costs=[1.0, 2.0, 3.0])
    assert min(comb.temperatures_[:2]) > 10 and comb.temperatures_[2] < 10, comb.temperatures_


def test_pa_falls_back_to_the_softmax_when_every_class_is_zero():
    comb = make_combiner("pa").fit(*views(500, [1.0, 1.0], 0))
    z = torch.tensor([[[-1.0, -2.0, -0.5, -3.0, -1.0]], [[-1.0, -2.0, -0.5, -3.0, -1.0]]])
    assert torch.allclose(comb.transform(z)[1], torch.softmax(z[1], 1))


@pytest.mark.parametrize("name", sorted(COMBINERS))
def test_step_on_a_subset_equals_transform_and_json_round_trip(name):
    val, yv = views(600, [1.0, 1.5, 2.0], 0)
    comb = make_combiner(name).fit(val, yv, costs=[1.0, 2.0, 3.0])
    full = comb.transform(val)
    again = type(comb).from_json(json.loads(json.dumps(comb.to_json(), allow_nan=False)))
    assert torch.equal(again.transform(val), full)
    rows = torch.arange(0, 600, 7)
    for k in range(3):
        assert torch.equal(comb.step(k, [val[j, rows] for j in range(k + 1)]), full[k, rows])


@pytest.mark.parametrize("method", sorted(set(METHODS) - {"static"}))
def test_every_policy_composes_with_a_combiner(method):
    val, yv = views(400, [1.0, 1.5, 2.0], 0)
    test, yt = views(300, [1.0, 1.5, 2.0], 1)
    params = {"epochs": 2, "restarts": 1, "patience": 2, "lr": 0.01} if method.startswith("eenet") else {}
    sched = fit_combined(f"mie+{method}", params, torch.softmax(val, 2), val, yv, [1.0, 2.0, 3.0], 2.0)
    d = json.loads(json.dumps(sched.to_json()))  # thresholds may be infinite: scheduler files are written as io.write_json does
    json.dumps(d["combiner"], allow_nan=False)
    assert d["method"] == f"mie+{method}" and d["combiner"]["name"] == "mie"
    again = scheduler_from_json(d)
    outs = again.outputs({"probs": torch.softmax(test, 2), "logits": test})
    assert torch.equal(outs, sched.combiner.transform(test))
    assert torch.equal(again.assign(outs, yt), sched.assign(outs, yt))


@pytest.mark.parametrize("method", ["best+maxpred", "geo+maxpred", "geo+maxpred_shared", "best+maxpred_shared"])
def test_the_baseline_combiners_compose_and_decide_exit_by_exit_as_they_assign(method):
    """As the runtime runs them: the combiner's step on the logits of the exits run so far, then the policy's leaves."""
    val, yv = views(400, [1.0, 1.5, 2.0], 0)
    test, _ = views(300, [1.0, 1.5, 2.0], 1)
    sched = fit_combined(method, {}, torch.softmax(val, 2), val, yv, [1.0, 2.0, 3.0], 2.0)
    assert sched.val_cost_ <= 2.0
    again = scheduler_from_json(json.loads(json.dumps(sched.to_json())))
    assert again.method == method and type(again.policy) is type(sched.policy)
    outs = again.outputs({"probs": torch.softmax(test, 2), "logits": test})
    assert torch.equal(outs, sched.combiner.transform(test))
    exits = sched.assign(outs)
    assert torch.equal(again.assign(outs), exits)
    got, running = torch.full((300,), -1), torch.arange(300)
    for k in range(3):
        seen = [again.exit_outputs(j, [test[i, running] for i in range(j + 1)]) for j in range(k + 1)]
        out = again.leaves(k, seen)
        got[running[out]] = k
        running = running[~out]
    assert torch.equal(got, exits)


def test_an_old_cache_without_logits_names_the_rule_to_rerun():
    val, yv = views(300, [1.0, 2.0], 0)
    sched = fit_combined("ztw+maxpred", {}, torch.softmax(val, 2), val, yv, [1.0, 2.0], 1.5)
    with pytest.raises(ValueError, match="--forcerun cache_logits"):
        sched.outputs({"probs": torch.softmax(val, 2)})
    with pytest.raises(ValueError, match="--forcerun cache_logits"):
        fit_combined("ztw+maxpred", {}, torch.softmax(val, 2), None, yv, [1.0, 2.0], 1.5)
    plain = fit_combined("maxpred", {}, torch.softmax(val, 2), None, yv, [1.0, 2.0], 1.5)  # old caches still work
    assert torch.equal(plain.outputs({"probs": torch.softmax(val, 2)}), torch.softmax(val, 2))
    assert split_method("maxpred") == (None, "maxpred")
    with pytest.raises(ValueError, match="unknown combiner"):
        split_method("foo+maxpred")


@pytest.mark.parametrize("method", ["ztw+eenet", "maxpred", "pa+patience"])
def test_fitting_every_budget_in_one_call_gives_what_one_call_a_budget_gives(method):
    """fit_budgets (one fit_scheduler job a policy) against fit_combined once per budget (a job a budget): the same
    JSON at every budget, the combiner fitted once and shared, an infeasible budget returned, not raised."""
    from eenet.schedulers import InfeasibleBudgetError, fit_budgets

    val, yv = views(400, [1.0, 1.5, 2.0], 0)
    params = {"epochs": 3, "restarts": 1, "patience": 2, "lr": 0.01, "seed": 3} if "eenet" in method else {}
    costs, budgets = [1.0, 2.0, 3.0], [1.4, 2.0, 2.6, 0.5]  # 0.5 ms: below the first exit's cost
    together = fit_budgets(method, params, torch.softmax(val, 2), val, yv, costs, budgets)
    assert isinstance(together[-1], InfeasibleBudgetError)
    for budget, sched in zip(budgets[:-1], together, strict=False):
        alone = fit_combined(method, params, torch.softmax(val, 2), val, yv, costs, budget)
        assert json.dumps(sched.to_json()) == json.dumps(alone.to_json()), (method, budget)
    combiners = {id(s.combiner) if "+" in method else None for s in together[:-1]}
    assert len(combiners) == 1


def test_a_combiner_that_lowers_an_exits_validation_accuracy_is_reported(caplog):
    """Product anytime on exits whose raw logits are mostly negative: the product over exits loses what the last exit
    alone gets right; fit_budgets warns, naming the exits and the points lost."""
    import logging

    from eenet.schedulers.compose import combiner_losses

    n, c = 400, 4
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, c, (n,), generator=g)
    early = torch.randn(n, c, generator=g) - 2.0  # exit 0: noise, below zero (PA's product keeps only positive logits)
    late = torch.randn(n, c, generator=g) - 2.0
    late[torch.arange(n), labels] += 3.5  # exit 1: right most of the time
    early[torch.arange(n), (labels + 1) % c] += 4.0  # exit 0 confidently wrong: its positive logit poisons the product
    logits = torch.stack([early, late])
    probs = torch.softmax(logits, 2)
    with caplog.at_level(logging.WARNING, logger="eenet.schedulers.compose"):
        fit_combined("pa+maxpred", {}, probs, logits, labels, [1.0, 2.0], 2.0)
    losses = combiner_losses(make_combiner("pa").fit(logits, labels, [1.0, 2.0]).transform(logits), probs, labels)
    assert losses[1] > 0
    assert any("pa combiner lowers the validation accuracy of exit(s) 1" in r.getMessage() for r in caplog.records)
