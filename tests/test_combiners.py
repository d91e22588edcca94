"""Exit combiners (eenet.combiners) on constructed outputs where the answer is known, composed with the policies."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import exits_from_logits_step_by_step

from eenet.analysis.tables import bench_tables_html, combiner_loss_rows
from eenet.catalog import split_method
from eenet.combiners import COMBINERS, combiner_from_json, make_combiner
from eenet.schedulers import METHODS, fit_budgets, make_scheduler, scheduler_from_json
from eenet.schedulers import fit_policy as fit_combined
from eenet.schedulers.compose import combiner_losses

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


def test_ztw_ens_puts_no_weight_on_uninformative_exits_and_equals_the_single_exit():
    val, yv = views(4000, [0.0, 0.0, 0.0, 2.0], 0)
    test, yt = views(4000, [0.0, 0.0, 0.0, 2.0], 1)
    comb = make_combiner("ztw_ens").fit(val, yv)
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
    assert torch.equal(exits_from_logits_step_by_step(again, test), exits)  # as the runtime runs it


def test_an_old_cache_without_logits_names_the_rule_to_rerun():
    val, yv = views(300, [1.0, 2.0], 0)
    sched = fit_combined("ztw_ens+maxpred", {}, torch.softmax(val, 2), val, yv, [1.0, 2.0], 1.5)
    with pytest.raises(ValueError, match="--forcerun cache_logits"):
        sched.outputs({"probs": torch.softmax(val, 2)})
    with pytest.raises(ValueError, match="--forcerun cache_logits"):
        fit_combined("ztw_ens+maxpred", {}, torch.softmax(val, 2), None, yv, [1.0, 2.0], 1.5)
    plain = fit_combined("maxpred", {}, torch.softmax(val, 2), None, yv, [1.0, 2.0], 1.5)  # old caches still work
    assert torch.equal(plain.outputs({"probs": torch.softmax(val, 2)}), torch.softmax(val, 2))
    assert split_method("maxpred") == (None, "maxpred")
    with pytest.raises(ValueError, match="unknown combiner"):
        split_method("foo+maxpred")


@pytest.mark.parametrize("method", ["ztw_ens+eenet", "maxpred", "pa+patience"])
def test_fitting_every_budget_in_one_call_gives_what_one_call_a_budget_gives(method):
    """fit_budgets (one fit_scheduler job a policy) against fit_combined once per budget (a job a budget): the same
    JSON at every budget, the combiner fitted once and shared, an infeasible budget returned, not raised."""
    from eenet.schedulers import InfeasibleBudgetError

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


def paper_anytime_product(logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Product anytime as Jazbec et al.'s code computes it (``anytime_product`` with per-exit ``weights [K]`` and the
    fall-back to the exit's softmax): the cumulative product over exits of ``max(z, 0)^w``, renormalised; ``[K, N, C]``."""
    prod = logits.clamp(min=0).pow(weights.view(-1, 1, 1)).cumprod(dim=0)
    total = prod.sum(dim=2, keepdim=True)
    return torch.where(total.eq(0), torch.softmax(logits, dim=2), prod / total)


def test_pa_is_the_papers_anytime_product_with_its_per_exit_weights():
    val, yv = views(600, [1.0, 1.5, 2.0], 0)
    comb = make_combiner("pa").fit(val, yv)
    assert comb.weights_ == [1 / 3, 2 / 3, 1.0]  # w_j = (j+1)/K, as in the paper's experiments
    paper = paper_anytime_product(val.double(), torch.tensor(comb.weights_, dtype=torch.float64))
    assert (paper.sum(2) > 0).all() and bool((paper[2] == torch.softmax(val[2].double(), 1)).all(1).any())  # some fall back
    assert torch.equal(comb.transform(val).argmax(2), paper.argmax(2))  # the fitted a_k set the confidence, not the argmax
    unscaled = combiner_from_json({**comb.to_json(), "exponents": [1.0, 1.0, 1.0]})
    assert torch.allclose(unscaled.transform(val).double(), paper, atol=1e-5)


def outvoted(n: int = 60, c: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Exit 0 gives a wrong class 3 and the true class 1, exit 1 the true class 2 and that wrong class 1, every other
    class -1: ``logits [2, n, C]``, ``labels [n]``."""
    labels = torch.arange(n) % c
    rows, wrong = torch.arange(n), (labels + 1) % c
    z = torch.full((2, n, c), -1.0)
    z[0, rows, wrong], z[0, rows, labels] = 3.0, 1.0
    z[1, rows, labels], z[1, rows, wrong] = 2.0, 1.0
    return z, labels


def test_per_exit_weights_let_a_right_last_exit_outvote_a_confidently_wrong_first_one():
    """The uniform product (3 * 1 > 1 * 2) is wrong at exit 1 on every sample the exit alone gets right; the paper's
    weights (3^0.5 * 1 < 1 * 2) lose nothing. A file fitted before the weights were added reads as uniform."""
    z, labels = outvoted()
    probs = torch.softmax(z, 2)
    paper = make_combiner("pa").fit(z, labels)
    assert paper.weights_ == [0.5, 1.0]
    before = {k: v for k, v in paper.to_json().items() if k != "weights"}
    uniform = combiner_from_json(before)
    assert uniform.weights_ == [1.0, 1.0]
    assert combiner_losses(paper.transform(z), probs, labels) == [0.0, 0.0]
    assert combiner_losses(uniform.transform(z), probs, labels) == [0.0, 1.0]


def vetoed(n: int = 60, c: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Exit 0 gives the true class -1 and a wrong class 2 (the rest -1); exit 1 the true class 10 and every other 5:
    ``logits [2, n, C]``, ``labels [n]``."""
    labels = torch.arange(n) % c
    rows = torch.arange(n)
    z = torch.stack([torch.full((n, c), -1.0), torch.full((n, c), 5.0)])
    z[0, rows, (labels + 1) % c] = 2.0
    z[1, rows, labels] = 10.0
    return z, labels


def test_the_report_lists_a_combiner_that_lowers_an_exits_accuracy_and_not_one_that_does_not(tmp_path):
    """The ReLU's veto, which no positive weight lifts: the true class's -1 at exit 0 zeroes it in PA's product at exit
    1, which keeps the wrong class on every sample (100 points lost); best so far keeps exit 1's more confident answer
    (nothing lost). The report's first table names pa+maxpred, exit 1, 100.00 points, from the fitted files' losses
    (fit_budgets' combiner_losses); best+maxpred is not in it."""
    logits, labels = vetoed()
    probs, costs, budgets = torch.softmax(logits, 2), [1.0, 2.0], [1.5, 2.0]
    fitted = {}
    for method in ("pa+maxpred", "best+maxpred"):
        for budget, sched in zip(budgets, fit_budgets(method, {}, probs, logits, labels, costs, budgets), strict=True):
            record = {"budget_value": budget, **json.loads(json.dumps(sched.to_json()))}
            fitted[str(tmp_path / "results" / "run" / "seed0" / "schedulers" / method / f"{budget}.json")] = record
    records = {m: [r for p, r in fitted.items() if f"/{m}/" in p] for m in ("pa+maxpred", "best+maxpred")}
    pa = make_combiner("pa").fit(logits, labels, costs)
    assert [r["combiner_losses"] for r in records["pa+maxpred"]] == [combiner_losses(pa.transform(logits), probs, labels)] * 2
    assert records["pa+maxpred"][0]["combiner_losses"] == [0.0, 1.0]
    assert records["best+maxpred"][0]["combiner_losses"] == [0.0, 0.0]
    assert scheduler_from_json(records["pa+maxpred"][0]).combiner_losses == [0.0, 1.0]  # read back with the policy
    rows = combiner_loss_rows(fitted)
    assert rows == [{"run": "run/seed0", "policy": "pa+maxpred", "combiner": "pa", "exits": "1", "points_lost": "100.00",
                     "budgets": "1.5, 2.0"}]  # fmt: skip
    first = bench_tables_html("run", [], [], fitted).split("<h3>")[1]  # the combiner-loss table, before stats.csv's
    assert "<td>pa+maxpred</td>" in first and "100.00" in first and "best+maxpred" not in first
    harmless = {p: r for p, r in fitted.items() if "/best+maxpred/" in p}
    assert combiner_loss_rows(harmless) == [] and "None of the combined policies does" in bench_tables_html("run", [], [], harmless)


def test_a_combined_policy_gives_its_parameters_as_every_policy_does():
    """get_params names the constructor's arguments (scikit-learn's convention): the combiner, the policy, the
    combiner's validation losses and how the two were fitted (combiner_fit), read back as given."""
    logits, labels = vetoed()
    (sched,) = fit_budgets("pa+maxpred", {}, torch.softmax(logits, 2), logits, labels, [1.0, 2.0], [1.5])
    params = sched.get_params()
    assert list(params) == ["combiner", "policy", "combiner_losses", "combiner_fit"]
    assert params["policy"] is sched.policy and params["combiner_losses"] == sched.to_json()["combiner_losses"]
    assert params["combiner_fit"] == sched.to_json()["combiner_fit"] == {"mode": "crossfit", "folds": 2, "seed": 0}  # the default


# -- combiner_fit: which parts of validation the combiner and the thresholds are fitted on (issue 31) ---------------------


def weak_first_exit(n: int, seed: int, c: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """Two exits over ``c`` classes: the first a weak view of the label (strength 0.5), the second a strong one (3): a
    ``ztw_ens`` combiner has ``c`` biases an exit to fit, which 400 samples of 20 classes let it overfit."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, c, (n,), generator=g)
    onehot = torch.nn.functional.one_hot(labels, c).float()
    return torch.stack([s * onehot + torch.randn(n, c, generator=g) for s in (0.5, 3.0)]), labels


def fit_mode(method: str, logits: torch.Tensor, labels: torch.Tensor, budget: float, **fit):
    (sched,) = fit_budgets(
        method, {"combiner_fit": fit}, torch.softmax(logits, 2), logits, labels, [1.0, 2.0, 3.0][: logits.shape[0]], [budget]
    )
    return sched


def test_crossfit_runs_the_all_validation_combiner_with_thresholds_fitted_on_out_of_fold_outputs():
    """The combiner in the file is the one fitted on all of validation (as ``same`` gives); the thresholds differ, fitted
    on each sample's output by the combiner of the other fold; planted: a combiner that overfits 400 samples of 20
    classes, where the same-data fit's validation accuracy overstates its test accuracy and the cross-fitted one's much
    less (means of 3 draws)."""
    from eenet.schedulers import accuracy
    from eenet.schedulers.compose import fit_combiner, validation_parts

    same_gap, cross_gap = [], []
    for seed in range(3):
        val, yv = weak_first_exit(400, seed)
        test, yt = weak_first_exit(20000, 100 + seed)
        same, cross = (fit_mode("ztw_ens+maxpred", val, yv, 1.5, mode=m, seed=seed) for m in ("same", "crossfit"))
        assert cross.to_json()["combiner"] == same.to_json()["combiner"] == make_combiner("ztw_ens").fit(val, yv, [1.0, 2.0]).to_json()
        assert cross.policy.thresholds_ != same.policy.thresholds_
        assert "combiner_fit" not in same.to_json() and cross.to_json()["combiner_fit"] == {"mode": "crossfit", "folds": 2, "seed": seed}
        # the outputs the thresholds saw: fold by fold, the combiner fitted on the other fold
        _, outputs, rows = fit_combiner("ztw_ens", val, yv, [1.0, 2.0], {"mode": "crossfit", "seed": seed})
        parts = validation_parts(yv, {"mode": "crossfit", "folds": 2, "seed": seed})
        other = make_combiner("ztw_ens").fit(val[:, parts == 1], yv[parts == 1], [1.0, 2.0])
        assert rows is None and torch.equal(outputs[:, parts == 0], other.transform(val[:, parts == 0]))
        assert cross.val_accuracy_ == accuracy(outputs, yv, cross.policy.assign(outputs))
        for sched, gaps in ((same, same_gap), (cross, cross_gap)):
            out = sched.outputs({"probs": torch.softmax(test, 2), "logits": test})
            gaps.append(sched.val_accuracy_ - accuracy(out, yt, sched.assign(out)))
    assert sum(same_gap) / 3 > 0.03 and sum(cross_gap) / 3 < sum(same_gap) / 3 - 0.015, (same_gap, cross_gap)


def test_validation_folds_are_disjoint_stratified_and_seeded():
    from eenet.schedulers.compose import combiner_fit_options, validation_parts

    _, labels = views(503, [1.0], 0)
    crossfit = combiner_fit_options({"mode": "crossfit", "folds": 3, "seed": 4})
    parts = validation_parts(labels, crossfit)
    assert sorted(parts.unique().tolist()) == [0, 1, 2]  # one fold a sample: the folds are disjoint and cover validation
    for c in range(C):  # each class dealt out over the folds in turn
        counts = torch.bincount(parts[labels == c], minlength=3)
        assert counts.max() - counts.min() <= 1
    assert torch.equal(parts, validation_parts(labels, crossfit))
    assert not torch.equal(parts, validation_parts(labels, {**crossfit, "seed": 5}))
    split = validation_parts(labels, combiner_fit_options({"mode": "split", "share": 0.3, "seed": 4}))
    for c in range(C):
        n = int((labels == c).sum())
        assert int((split[labels == c] == 0).sum()) == round(0.3 * n)
    assert validation_parts(labels, combiner_fit_options({"mode": "same"})).eq(0).all()
    # the same seed, the same fit; another seed, other folds and other thresholds
    val, yv = views(600, [1.0, 1.5, 2.0], 0)
    once, again, other = (fit_mode("ztw_ens+maxpred", val, yv, 2.0, mode="crossfit", seed=s) for s in (1, 1, 2))
    assert json.dumps(once.to_json()) == json.dumps(again.to_json())
    assert once.policy.thresholds_ != other.policy.thresholds_ and once.to_json()["combiner"] == other.to_json()["combiner"]
    for bad, match in (
        ({"mode": "nope"}, "mode 'nope'"),
        ({"folds": 1}, "folds >= 2"),
        ({"share": 1.0}, "share < 1"),
        ({"fold": 2}, "unknown"),
    ):
        with pytest.raises(ValueError, match=match):
            combiner_fit_options(bad)


@pytest.mark.parametrize("method", ["ztw_ens+maxpred", "mie+entropy", "ztw_ens+patience", "pa+maxpred_shared"])
def test_a_cross_fitted_policy_round_trips_through_json_and_decides_exit_by_exit_as_it_assigns(method):
    """Its file gives the policy back (combiner, thresholds, combiner_fit); the runtime's steps (the combiner's step on
    the logits so far, then leaves; leaves_one at batch 1) give the exits assign gives."""
    from helpers import exits_step_by_step

    val, yv = views(600, [1.0, 1.5, 2.0], 0)
    test, yt = views(300, [1.0, 1.5, 2.0], 1)
    sched = fit_mode(method, val, yv, 2.0, mode="crossfit", folds=3, seed=7)
    d = json.loads(json.dumps(sched.to_json()))
    assert d["combiner_fit"] == {"mode": "crossfit", "folds": 3, "seed": 7}
    again = scheduler_from_json(d)
    assert again.combiner_fit == sched.combiner_fit and json.dumps(again.to_json()) == json.dumps(sched.to_json())
    outs = again.outputs({"probs": torch.softmax(test, 2), "logits": test})
    exits = sched.assign(outs, yt)
    assert torch.equal(again.assign(outs, yt), exits)
    assert torch.equal(exits_from_logits_step_by_step(again, test), exits)  # as the runtime runs it
    batched, one = exits_step_by_step(again, outs)
    assert torch.equal(batched, exits) and one == exits.tolist()


def test_split_fits_the_combiner_on_its_share_and_the_thresholds_on_the_rest():
    from eenet.schedulers.compose import validation_parts

    val, yv = views(600, [1.0, 1.5, 2.0], 0)
    sched = fit_mode("mie+maxpred", val, yv, 2.0, mode="split", share=0.4, seed=3)
    parts = validation_parts(yv, {"mode": "split", "share": 0.4, "seed": 3})
    fitted_on = make_combiner("mie").fit(val[:, parts == 0], yv[parts == 0], [1.0, 2.0, 3.0])
    assert sched.to_json()["combiner"] == fitted_on.to_json()
    assert sched.to_json()["combiner_fit"] == {"mode": "split", "share": 0.4, "seed": 3}
    rest = parts == 1
    plain = make_scheduler("maxpred").fit(fitted_on.transform(val[:, rest]), yv[rest], [1.0, 2.0, 3.0], 2.0)
    assert sched.policy.thresholds_ == plain.thresholds_ and sched.val_accuracy_ == plain.val_accuracy_


def test_same_is_the_fit_before_the_option_and_every_benchmark_gets_the_schema_default():
    """``same``: the combiner and the thresholds on all of validation, the file as before (no combiner_fit); the
    schema's default block is :data:`COMBINER_FIT_DEFAULTS` (its seed: the run's scheduler seed, hyper_params), and only
    a combined policy's hyper-parameters carry it."""
    import yaml
    from helpers import REPO

    from eenet.pipeline.planning import hyper_params
    from eenet.schedulers.compose import COMBINER_FIT_DEFAULTS

    val, yv = views(400, [1.0, 1.5, 2.0], 0)
    sched = fit_mode("ztw_ens+maxpred", val, yv, 2.0, mode="same")
    comb = make_combiner("ztw_ens").fit(val, yv, [1.0, 2.0, 3.0])
    plain = make_scheduler("maxpred").fit(comb.transform(val), yv, [1.0, 2.0, 3.0], 2.0)
    assert sched.policy.thresholds_ == plain.thresholds_ and "combiner_fit" not in sched.to_json()
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    block = schema["properties"]["benchmarks"]["additionalProperties"]["properties"]["combiner_fit"]["properties"]
    assert {k: v["default"] for k, v in block.items()} == {**COMBINER_FIT_DEFAULTS, "seed": None}
    b = {"methods": ["maxpred"], "scheduler_seed": 4, "combiner_fit": {k: v["default"] for k, v in block.items()}}
    assert hyper_params(b, "ztw_ens+maxpred") == {"seed": 4, "combiner_fit": {**COMBINER_FIT_DEFAULTS, "seed": 4}}
    assert hyper_params({**b, "combiner_fit": {"mode": "same", "seed": 9}}, "mie+maxpred")["combiner_fit"] == {"mode": "same", "seed": 9}
    assert hyper_params(b, "maxpred") == {"seed": 4}  # a policy alone: as before (the demo's files do not change)
