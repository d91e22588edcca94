"""The baselines reviewers ask for, on constructed outputs where the answer is known: one MaxPred threshold shared by
every exit (``maxpred_shared``), and the combiners ``best`` (anytime caching) and ``geo`` (unweighted geometric mean)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from helpers import exits_step_by_step

from eenet.combiners import make_combiner
from eenet.schedulers import InfeasibleBudgetError, make_scheduler, realised_cost, scheduler_from_json
from eenet.schedulers.base import assign_by_thresholds


def with_confidence(scores: torch.Tensor, c: int) -> torch.Tensor:
    """``[K, N]`` scores in ``[1/c, 1]`` -> probabilities ``[K, N, c]`` whose max class probability is the score."""
    probs = ((1 - scores) / (c - 1)).unsqueeze(-1).repeat(1, 1, c)
    probs[..., 0] = scores
    return probs


# the scores of 4 samples at exits 0 and 1 (exit 2's do not matter); costs 1, 2, 3. By hand, the exits and their mean
# cost at each candidate t: 0.95 -> [2,2,2,1] 2.75; 0.9 -> [0,2,2,1] 2.25; 0.8 -> [0,1,2,1] 2.0; 0.7 -> [0,1,2,0] 1.75;
# 0.6 -> [0,0,2,0] 1.5; 0.58 -> [0,0,1,0] 1.25; 0.55 and below -> [0,0,0,0] 1.0
HAND = torch.tensor([[0.9, 0.6, 0.55, 0.7], [0.5, 0.8, 0.58, 0.95], [0.99, 0.99, 0.99, 0.99]])


@pytest.mark.parametrize(
    ("budget", "t", "exits"),
    [
        (2.0, 0.8, [0, 1, 2, 1]),
        (2.2, 0.8, [0, 1, 2, 1]),
        (1.9, 0.7, [0, 1, 2, 0]),
        (1.0, 0.55, [0, 0, 0, 0]),
        (3.0, math.inf, [2, 2, 2, 2]),
    ],
)
def test_the_shared_threshold_is_the_largest_that_meets_the_budget(budget, t, exits):
    probs = with_confidence(HAND, 2)
    sched = make_scheduler("maxpred_shared").fit(probs, torch.zeros(4, dtype=torch.long), [1.0, 2.0, 3.0], budget)
    assert sched.threshold_ == float(torch.tensor(t, dtype=torch.float32))
    assert sched.thresholds_ == [sched.threshold_] * 2 + [-math.inf]
    assert sched.assign(probs).tolist() == exits
    assert sched.val_cost_ <= budget and sched.exit_distribution_ == [exits.count(k) / 4 for k in range(3)]


def test_a_budget_below_the_first_exit_is_infeasible():
    probs = with_confidence(HAND, 2)
    with pytest.raises(InfeasibleBudgetError):
        make_scheduler("maxpred_shared").fit(probs, torch.zeros(4, dtype=torch.long), [1.0, 2.0, 3.0], 0.9)


def test_exits_calibrated_alike_share_a_threshold_that_maxpred_with_equal_thresholds_reproduces():
    """Every exit's confidence i.i.d. uniform on [0.2, 1]: with one threshold t a sample leaves at exit k < K-1 with
    probability (1-F) F^k, F = (t - 0.2) / 0.8, and reaches the last with F^(K-1); MaxPred with every threshold t is
    the same policy, sample by sample, on validation and on test."""
    g = torch.Generator().manual_seed(0)
    k_exits, n, costs = 4, 20000, [1.0, 2.0, 3.0, 4.0]
    val = with_confidence(0.2 + 0.8 * torch.rand(k_exits, n, generator=g), 5)
    test = with_confidence(0.2 + 0.8 * torch.rand(k_exits, n, generator=g), 5)
    labels = torch.randint(0, 5, (n,), generator=g)
    budget = 2.2
    sched = make_scheduler("maxpred_shared").fit(val, labels, costs, budget)
    t = sched.threshold_
    assert sched.val_cost_ <= budget
    # the largest such t: the next score above it breaks the budget
    scores = val[:-1].max(dim=-1).values.flatten()
    above = float(scores[scores > t].min())
    th = torch.tensor([above] * (k_exits - 1) + [-math.inf])
    assert realised_cost(assign_by_thresholds(val.max(dim=-1).values, th), torch.tensor(costs)) > budget
    f = (t - 0.2) / 0.8
    expected = [(1 - f) * f**k for k in range(k_exits - 1)] + [f ** (k_exits - 1)]
    assert sched.exit_distribution_ == pytest.approx(expected, abs=0.01)
    maxpred = make_scheduler("maxpred").fit(val, labels, costs, budget)
    maxpred.thresholds_ = list(sched.thresholds_)
    for probs in (val, test):
        assert torch.equal(maxpred.assign(probs), sched.assign(probs))


def test_shared_threshold_leaves_exit_by_exit_as_it_assigns_and_round_trips_through_json():
    g = torch.Generator().manual_seed(1)
    val = F.softmax(2 * torch.randn(3, 400, 6, generator=g), dim=2)
    test = F.softmax(2 * torch.randn(3, 300, 6, generator=g), dim=2)
    labels = torch.randint(0, 6, (400,), generator=g)
    sched = make_scheduler("maxpred_shared").fit(val, labels, [1.0, 2.0, 3.0], 1.8)
    assert 0 < sched.exit_distribution_[1] < 1
    again = scheduler_from_json(json.loads(json.dumps(sched.to_json())))
    assert type(again) is type(sched) and again.threshold_ == sched.threshold_
    for probs in (val, test):
        exits = sched.assign(probs)
        assert torch.equal(again.assign(probs), exits)
        batched, one = exits_step_by_step(again, probs)
        assert torch.equal(batched, exits) and one == exits.tolist()


def logits_of(seed: int, k: int = 4, n: int = 300, c: int = 5) -> torch.Tensor:
    return 2 * torch.randn(k, n, c, generator=torch.Generator().manual_seed(seed))


def test_best_so_far_is_the_softmax_of_the_most_confident_exit_yet_ties_to_the_later():
    z = logits_of(0)
    z[2, :50] = z[1, :50]  # ties between exits 1 and 2: exit 2's probabilities (the same values) from exit 2 on
    # rows 50..59: exits 0 and 3 equally confident in different classes, exits 1 and 2 unsure: exit 3 wins the tie
    z[0, 50:60], z[1:3, 50:60], z[3, 50:60] = torch.tensor([2.0, 0, 0, 0, 0]), 0.0, torch.tensor([0, 2.0, 0, 0, 0])
    comb = make_combiner("best").fit(z, torch.zeros(300, dtype=torch.long))
    probs = F.softmax(z, dim=2)
    conf = probs.max(dim=2).values
    out = comb.transform(z)
    for k in range(4):
        last = k - conf[: k + 1].flip(0).argmax(0)  # the last exit j <= k of the largest confidence
        assert torch.equal(out[k], probs[last, torch.arange(300)])
    assert torch.equal(conf[0, 50:60], conf[3, 50:60]) and (out[3, 50:60].argmax(1) == 1).all()
    assert comb.to_json() == {"name": "best", "num_exits": 4}


def test_geometric_mean_is_the_softmax_of_the_mean_log_probability():
    z = torch.tensor([[[2.0, 0.0, 0.0]], [[0.0, 2.0, 0.0]], [[0.0, 0.0, 2.0]]])
    out = make_combiner("geo").fit(z, torch.zeros(1, dtype=torch.long)).transform(z)
    e = math.e
    assert torch.allclose(out[1, 0], torch.tensor([e, e, 1.0]) / (2 * e + 1))  # mean log p: [1, 1, 0] - constant
    assert torch.allclose(out[2, 0], torch.full((3,), 1 / 3))
    z = logits_of(1)
    out = make_combiner("geo").fit(z, torch.zeros(300, dtype=torch.long)).transform(z)
    assert torch.allclose(out[0], F.softmax(z[0], dim=1), atol=1e-6)  # exit 0: its own softmax
    for k in range(4):  # the normalised geometric mean of the probabilities, in float64
        g = F.softmax(z[: k + 1].double(), dim=2).log().mean(0).exp()
        assert torch.allclose(out[k].double(), g / g.sum(1, keepdim=True), atol=1e-6)


def test_a_single_exit_leaves_at_its_exit_alone_at_batch_1_and_batched():
    g = torch.Generator().manual_seed(2)
    probs = F.softmax(torch.randn(4, 50, 3, generator=g), dim=2)
    labels = torch.randint(0, 3, (50,), generator=g)
    for k in range(4):
        sched = make_scheduler("static", exit_index=k).fit(probs, labels, [1.0, 2.0, 3.0, 4.0], k + 1.0)
        batched, one = exits_step_by_step(sched, probs)
        assert torch.equal(batched, torch.full((50,), k)) and one == [k] * 50


@pytest.mark.parametrize("budget", [1.3, 2.0, 2.6, 3.4])
def test_patience_at_batch_1_leaves_where_it_assigns(budget):
    """PABEE's fast single-sample rule (counts read back while the argmaxes agree) against its batched rule and its
    assignment, on outputs where predictions flip often and confidences tie at the threshold's side."""
    g = torch.Generator().manual_seed(3)
    val = F.softmax(1.5 * torch.randn(5, 400, 3, generator=g), dim=2)
    test = F.softmax(1.5 * torch.randn(5, 300, 3, generator=g), dim=2)
    labels = torch.randint(0, 3, (400,), generator=g)
    sched = make_scheduler("patience").fit(val, labels, [1.0, 1.5, 2.0, 3.0, 4.0], budget)
    for probs in (val, test):
        exits = sched.assign(probs)
        batched, one = exits_step_by_step(sched, probs)
        assert torch.equal(batched, exits) and one == exits.tolist()
    assert len(set(sched.assign(test).tolist())) >= 2  # the rule decides: samples leave at several exits
