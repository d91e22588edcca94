import itertools
import json

import pytest
import torch
from helpers import COSTS, make_probs

from eenet.schedulers import (
    InfeasibleBudgetError,
    OracleScheduler,
    accuracy,
    assign_by_thresholds,
    make_scheduler,
    realised_cost,
    scheduler_from_json,
    thresholds_for_distribution,
)

FAST_EENET = {"lr": 0.01, "epochs": 40, "patience": 20, "restarts": 3}
BUDGETS = [0.45, 0.6, 0.8]
# every policy that decides from the probabilities alone (not the oracle, not a single exit)
POLICIES = ["maxpred", "entropy", "eenet", "patience", "maxpred_ts", "entropy_ts", "maxpred_opt", "entropy_opt", "eenet_geo",
            "eenet_noclass"]  # fmt: skip


def fit(method, val, budget):
    params = FAST_EENET if method.startswith("eenet") else {}
    return make_scheduler(method, **params).fit(val[0], val[1], COSTS, budget)


def test_thresholds_send_the_requested_counts():
    scores = torch.rand(3, 1000, generator=torch.Generator().manual_seed(0))
    q = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    exits = assign_by_thresholds(scores, thresholds_for_distribution(scores, q))
    assert torch.bincount(exits, minlength=3).tolist() == [500, 300, 200]


@pytest.mark.parametrize("method", [*POLICIES, "oracle"])
@pytest.mark.parametrize("budget", BUDGETS)
def test_validation_cost_meets_budget(method, budget, val_data):
    sched = fit(method, val_data, budget)
    exits = sched.assign(*val_data)
    cost = realised_cost(exits, torch.tensor(COSTS))
    assert cost <= budget + 1e-9
    assert sched.val_cost_ == pytest.approx(cost)
    if method != "oracle" and not method.endswith("_opt"):  # threshold policies spend (almost) all of the budget
        assert cost >= 0.98 * budget


@pytest.mark.parametrize("method", [*POLICIES, "oracle", "static"])
def test_json_round_trip_gives_the_same_policy(method, val_data, test_data):
    sched = make_scheduler("static", exit_index=1) if method == "static" else None
    sched = sched.fit(*val_data, COSTS, 0.6) if sched else fit(method, val_data, 0.6)
    again = scheduler_from_json(json.loads(json.dumps(sched.to_json())))
    assert type(again) is type(sched)
    assert torch.equal(again.assign(*test_data), sched.assign(*test_data))
    assert again.val_accuracy_ == sched.val_accuracy_


@pytest.mark.parametrize("budget", BUDGETS)
def test_oracle_bounds_every_method(budget, val_data, test_data):
    oracle = fit("oracle", val_data, budget)
    best = accuracy(test_data[0], test_data[1], oracle.assign(*test_data))
    for method in POLICIES:
        sched = fit(method, val_data, budget)
        assert accuracy(test_data[0], test_data[1], sched.assign(test_data[0])) <= best, method


def test_oracle_is_exact_on_a_small_case():
    probs, labels = make_probs(n=7, k=3, c=3, seed=5)
    costs = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    for budget in [1.0, 1.5, 2.0, 2.7, 4.0]:
        oracle = OracleScheduler().fit(probs, labels, costs, budget)
        got = accuracy(probs, labels, oracle.assign(probs, labels))
        best = max(
            accuracy(probs, labels, torch.tensor(a))
            for a in itertools.product(range(3), repeat=7)
            if realised_cost(torch.tensor(a), costs) <= budget + 1e-12
        )
        assert got == pytest.approx(best)


def test_more_budget_never_hurts_the_oracle(val_data):
    accs = [fit("oracle", val_data, b).val_accuracy_ for b in [0.3, 0.4, 0.5, 0.7, 1.0]]
    assert accs == sorted(accs)


def test_static_exit_accuracy_matches_that_exit(val_data):
    probs, labels = val_data
    for k in range(3):
        sched = make_scheduler("static", exit_index=k).fit(probs, labels, COSTS, 1.0)
        assert sched.val_accuracy_ == pytest.approx(float((probs[k].argmax(1) == labels).float().mean()))
        assert sched.val_cost_ == pytest.approx(COSTS[k])


@pytest.mark.parametrize("method", ["maxpred", "eenet", "oracle"])
def test_budget_below_cheapest_exit_is_refused(method, val_data):
    with pytest.raises(InfeasibleBudgetError, match="below the cost of the cheapest exit"):
        fit(method, val_data, 0.2)


def test_geometric_uses_a_full_budget_on_the_last_exit(val_data):
    sched = fit("maxpred", val_data, 1.0)
    assert torch.all(sched.assign(val_data[0]) == 2)


def test_wrong_number_of_exits_or_classes_is_named(val_data):
    sched = fit("maxpred", val_data, 0.6)
    with pytest.raises(ValueError, match="3 exits x 10 classes"):
        sched.assign(val_data[0][:2])
    with pytest.raises(ValueError, match="3 exits x 10 classes"):
        sched.assign(val_data[0][..., :5])
    doc = sched.to_json()
    doc["costs"] = doc["costs"][:2]
    with pytest.raises(ValueError, match="2 costs for 3 exits"):
        scheduler_from_json(doc)


def test_eenet_weights_mismatch_is_named(val_data):
    doc = fit("eenet", val_data, 0.6).to_json()
    doc["num_classes"] = 12
    with pytest.raises(ValueError, match="feature sizes"):
        scheduler_from_json(doc)


def test_eenet_learns_utilities_that_rank_correctness(val_data):
    """The learned utility of each exit separates right from wrong predictions (AUC well above 0.5)."""
    probs, labels = val_data
    sched = fit("eenet", val_data, 0.6)
    u = sched.utilities(probs)
    correct = probs.argmax(2) == labels
    for k in range(3):
        pos, neg = u[k][correct[k]], u[k][~correct[k]]
        auc = (pos.view(-1, 1) > neg.view(1, -1)).float().mean().item()
        assert auc > 0.7, f"exit {k}: AUC {auc:.3f}"


def test_oracle_frontier_rises_from_the_cheapest_exit(test_data):
    from eenet.analysis.plotting import oracle_frontier

    curve = oracle_frontier(*test_data, COSTS, points=15)
    assert curve[0][0] == pytest.approx(min(COSTS))
    accs = [a for _, a in curve]
    assert accs == sorted(accs) and accs[-1] > accs[0]
    assert all(c <= min(COSTS) + (max(COSTS) - min(COSTS)) * i / 14 + 1e-9 for i, (c, _) in enumerate(curve))


def test_schedulers_follow_scikit_learns_conventions(val_data):
    """Constructor arguments are attributes, fitted state ends in `_`, and JSON comes back through the constructor."""
    sched = make_scheduler("eenet", **FAST_EENET)
    assert sched.get_params()["restarts"] == 3 and sched.restarts == 3
    assert not any(k.endswith("_") for k in vars(sched)), "nothing learned before fit"
    sched.fit(*val_data, COSTS, 0.6)
    learned = {k for k in vars(sched) if k.endswith("_")}
    assert {"num_exits_", "costs_", "budget_", "val_accuracy_", "weights_", "thresholds_"} <= learned
    again = scheduler_from_json(json.loads(json.dumps(sched.to_json())))
    assert again.get_params() == sched.get_params()
    assert make_scheduler("static", exit_index=2).get_params() == {"exit_index": 2}
    assert make_scheduler("maxpred").get_params() == {} and make_scheduler("maxpred").score == "maxpred"


def test_the_oracle_says_it_needs_labels(val_data):
    oracle = fit("oracle", val_data, 0.6)
    assert oracle.requires_labels and not fit("maxpred", val_data, 0.6).requires_labels
    with pytest.raises(ValueError, match="needs the labels"):
        oracle.assign(val_data[0])


def test_fitted_policies_are_standard_json_and_files_written_before_still_load(tmp_path):
    """A threshold of -inf is written as the string "-Infinity" (jq, JavaScript and strict parsers reject a bare
    -Infinity); the policy read back assigns as before, and a file in the old encoding loads to the same policy."""
    import json

    from eenet.io import read_json, write_json
    from eenet.schedulers import make_scheduler, scheduler_from_json

    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(3, 300, 4, generator=g) * 3, dim=-1)
    labels = torch.randint(0, 4, (300,), generator=g)
    sched = make_scheduler("maxpred").fit(probs, labels, [1.0, 2.0, 3.0], 2.0)
    assert sched.thresholds_[-1] == float("-inf")
    path = tmp_path / "p.json"
    write_json(path, sched.to_json())
    text = path.read_text()

    def refuse(name):
        raise ValueError(f"not standard JSON: {name}")

    strict = json.loads(text, parse_constant=refuse)  # raises on -Infinity / NaN
    assert strict["state"]["thresholds"][-1] == "-Infinity"
    again = scheduler_from_json(read_json(path))
    assert again.thresholds_ == sched.thresholds_ and torch.equal(again.assign(probs), sched.assign(probs))
    old = tmp_path / "old.json"
    old.write_text(json.dumps(sched.to_json(), indent=2))  # the encoding of files written before: a bare -Infinity
    assert "-Infinity" in old.read_text() and '"-Infinity"' not in old.read_text()
    assert torch.equal(scheduler_from_json(read_json(old)).assign(probs), sched.assign(probs))
