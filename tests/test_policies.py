"""The policies added beside the paper's: patience (PABEE), temperature-scaled baselines, exit distributions
searched on validation. Constructed logits where the right answer is known."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import COSTS, make_probs

from eenet.schedulers import make_scheduler, realised_cost
from eenet.schedulers.calibrated import fit_temperature, nll
from eenet.schedulers.patience import patience_counts
from eenet.schedulers.search import _moves, search_distribution


def one_hot_probs(preds: list[list[int]], c: int = 5, confidence: float = 0.9) -> torch.Tensor:
    """``[K, N, C]`` with exit ``k`` of sample ``n`` predicting ``preds[n][k]`` with probability ``confidence``."""
    k_exits, n = len(preds[0]), len(preds)
    probs = torch.full((k_exits, n, c), (1 - confidence) / (c - 1))
    for i, row in enumerate(preds):
        for k, cls in enumerate(row):
            probs[k, i, cls] = confidence
    return probs


@pytest.mark.parametrize("t", [0, 1, 2, 3])
def test_patience_with_identical_predictions_leaves_at_exit_t(t):
    costs = [1.0, 2.0, 3.0, 4.0]
    probs = one_hot_probs([[i % 5] * 4 for i in range(40)])
    labels = torch.arange(40) % 5
    sched = make_scheduler("patience").fit(probs, labels, costs, costs[t])
    assert sched.patience_ == t
    assert sched.assign(probs).tolist() == [t] * 40


def test_patience_count_restarts_when_the_prediction_changes():
    probs = one_hot_probs([[1, 1, 2, 2, 2], [3, 3, 3, 3, 3], [0, 1, 0, 1, 0]])
    assert patience_counts(probs).T.tolist() == [[0, 1, 0, 1, 2], [0, 1, 2, 3, 4], [0, 0, 0, 0, 0]]
    sched = make_scheduler("patience").fit(probs, torch.tensor([2, 3, 0]), [1.0, 2.0, 3.0, 4.0, 5.0], 5.0)
    sched.patience_, sched.confidence_ = 2, 2.0  # PABEE with patience 3: leave once three exits in a row agree
    assert sched.assign(probs).tolist() == [4, 3, 4]


def test_patience_meets_a_budget_between_two_patiences_with_the_confidence_threshold(val_data):
    lo = make_scheduler("patience").fit(*val_data, COSTS, 0.45)
    costs = torch.tensor(COSTS)
    # PABEE with patience 1 and 2 (every sample with a count of t leaves: λ below any confidence)
    pabee = {t: realised_cost(lo._exits(val_data[0], t, -1.0), costs) for t in (1, 2)}
    budget = 0.5 * (pabee[1] + pabee[2])
    sched = make_scheduler("patience").fit(*val_data, COSTS, budget)
    assert sched.patience_ == 1 and 0.0 < sched.confidence_ < 1.0
    assert 0.98 * budget <= sched.val_cost_ <= budget


def test_temperature_scaling_lowers_validation_nll():
    probs, labels = make_probs(n=3000, k=2, seed=5)
    logp = torch.log(probs.clamp_min(1e-12))
    for scale, direction in [(4.0, "over"), (0.3, "under")]:
        distorted = F.softmax(scale * logp[1], dim=1)  # over- or under-confident
        t = fit_temperature(distorted, labels)
        assert nll(distorted, labels, t) < nll(distorted, labels) - 1e-3
        assert (t > 1.5) if direction == "over" else (t < 0.7)


def test_temperature_scaled_policy_stores_one_temperature_per_exit(val_data):
    sched = make_scheduler("maxpred_ts").fit(*val_data, COSTS, 0.6)
    assert len(sched.temperatures_) == 3 and all(t > 0 for t in sched.temperatures_)
    for k in range(3):
        assert nll(val_data[0][k], val_data[1], sched.temperatures_[k]) <= nll(val_data[0][k], val_data[1]) + 1e-9


@pytest.mark.parametrize("score", ["maxpred", "entropy"])
@pytest.mark.parametrize("holdout", [0.0, 0.5])
def test_searched_distribution_is_at_least_as_good_on_validation_as_the_geometric(score, holdout, val_data):
    for budget in [0.35, 0.45, 0.55, 0.65, 0.75, 0.9]:
        geometric = make_scheduler(score).fit(*val_data, COSTS, budget)
        searched = make_scheduler(f"{score}_opt", holdout=holdout).fit(*val_data, COSTS, budget)
        assert searched.val_accuracy_ >= geometric.val_accuracy_, budget
        assert searched.val_cost_ <= budget + 1e-9


def test_search_finds_the_distribution_when_the_geometric_family_cannot():
    """Exit 1 is useless (always wrong), exits 0 and 2 good on disjoint samples: the best distribution at a budget
    leaves nothing at exit 1, which no geometric q_k ∝ ρ^k with mass at both ends can do."""
    n = 1000
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(3, n, generator=g)
    correct = torch.zeros(3, n, dtype=torch.bool)
    correct[0] = scores[0] > 0.5  # confident at exit 0 <=> right there
    correct[2] = True
    costs = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    q0 = torch.tensor([0.3, 0.4, 0.3], dtype=torch.float64)  # cost 2.0
    q = search_distribution(scores, correct, costs, 2.0, q0)
    assert float(q[1]) < 0.02 and float(q @ costs) <= 2.0 + 1e-9
    # every move direction keeps the mass, and the three-exit ones the expected cost
    for move in _moves(costs):
        assert abs(float(move.sum())) < 1e-12
        if int((move != 0).sum()) == 3:
            assert abs(float(move @ costs)) < 1e-12


FAST_EENET = {"lr": 0.01, "epochs": 30, "patience": 15, "restarts": 2}


def test_eenet_ablations_are_eenet_with_one_thing_changed(val_data):
    from eenet.schedulers import scheduler_from_json
    from eenet.schedulers.base import search_budget

    full = make_scheduler("eenet", **FAST_EENET).fit(*val_data, COSTS, 0.6)
    noclass = make_scheduler("eenet_noclass", **FAST_EENET).fit(*val_data, COSTS, 0.6)
    assert [len(a) for a in full.weights_["a"]] == [10 + 2 + k for k in range(3)]
    assert [len(a) for a in noclass.weights_["a"]] == [2 + k for k in range(3)]  # max prob, entropy, earlier utilities
    assert "class_inputs" not in noclass.get_params() and noclass.class_inputs is False
    again = scheduler_from_json(noclass.to_json())
    assert torch.equal(again.assign(val_data[0]), noclass.assign(val_data[0]))

    geo = make_scheduler("eenet_geo", **FAST_EENET, holdout=0.0).fit(*val_data, COSTS, 0.6)  # no fallback to MaxPred
    assert geo.distribution == "geometric" and "distribution" not in geo.get_params()
    u = geo.utilities(val_data[0])
    ks = torch.arange(3, dtype=torch.float64)
    _, th, _ = search_budget(u, lambda t: F.softmax(ks * t, dim=0), torch.tensor(COSTS, dtype=torch.float64), 0.6, -30.0, 30.0)
    assert geo.thresholds_ == th.tolist()  # the learned utilities, thresholded by MaxPred's family
    with pytest.raises(TypeError, match="unexpected keyword argument 'distribution'"):
        make_scheduler("eenet_geo", distribution="search")  # fixed by the ablation


def test_accepted_params_leave_out_what_a_policy_does_not_take():
    from eenet.schedulers import accepted_params

    block = {"lr": 0.1, "distribution": "search", "class_inputs": False}
    assert accepted_params("eenet", block) == block
    assert accepted_params("eenet_geo", block) == {"lr": 0.1, "class_inputs": False}  # the ablation fixes the distribution
    assert accepted_params("maxpred", block) == {}
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        accepted_params("nope", block)
