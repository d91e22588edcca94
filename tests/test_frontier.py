"""The plain-network frontier: the network cut after each exit (that exit's head only) is timed with the exits and
predicts as that exit; each policy is compared with the most accurate cut at no more than its measured latency."""

from __future__ import annotations

import pytest
import torch

from eenet.analysis.frontier import frontier_columns, frontier_points, measured_latency
from eenet.measure.costs import profile_costs, run_cut, run_plain, run_to_exit
from eenet.models import build_model


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return build_model("small_cnn_3", 4, 1, width=4).eval(), torch.randn(6, 1, 28, 28)


def test_a_cut_network_predicts_as_its_exit_and_the_last_cut_is_the_plain_network(net):
    model, x = net
    outs = model(x)
    for k in range(model.num_exits):
        assert torch.equal(run_cut(model, x, k), outs[k].argmax(dim=1))
        assert torch.equal(run_cut(model, x, k), run_to_exit(model, x, k))
    assert torch.equal(run_cut(model, x, model.num_exits - 1), run_plain(model, x))


def test_the_cuts_are_timed_in_the_same_run_as_the_exits(net):
    model, x = net
    rows, plain = profile_costs(model, [x[i : i + 2] for i in range(0, 6, 2)], warmup=1, repeats=3)
    assert plain is not None and all("cut_ms" in r for r in rows[:-1]) and "cut_ms" not in rows[-1]
    assert all(r["cut_ms"] > 0 for r in rows[:-1])


def frontier_case():
    """3 exits, 10 samples; exits right on the first 4 / 6 / 9 samples; the cuts cost 1, 2 and (plain) 3 ms."""
    labels = torch.zeros(10, dtype=torch.long)
    probs = torch.zeros(3, 10, 2)
    for k, n_right in enumerate((4, 6, 9)):
        probs[k, :, 1] = 1.0
        probs[k, :n_right] = torch.tensor([1.0, 0.0])
    cost = [{"exit": "0", "cut_ms": "1.0", "plain_ms": "3.0"}, {"exit": "1", "cut_ms": "2.0", "plain_ms": "3.0"},
            {"exit": "2", "cut_ms": "", "plain_ms": "3.0"}]  # fmt: skip
    return probs, labels, cost


def test_each_policy_meets_the_most_accurate_cut_no_slower_than_its_measured_latency():
    probs, labels, cost = frontier_case()
    points = frontier_points(cost, probs, labels)
    assert [(p["exit"], p["ms"], p["accuracy"]) for p in points] == [(0, 1.0, 0.4), (1, 2.0, 0.6), (2, 3.0, 0.9)]

    def timing(method, batch, measured, simulated, whole):
        return {"method": method, "budget_value": "0.5", "batch_size": str(batch), "measured_ms": str(measured),
                "simulated_ms": str(simulated), "test_simulated_ms": str(whole)}  # fmt: skip

    runtime = [  # measured on a sample whose simulated cost was 2 ms, the whole test set's 1.5 ms: x0.75
        timing("fast", 1, 3.0, 2.0, 1.5),
        timing("fast", 16, 0.1, 2.0, 1.5),
        timing("slow", 1, 3.5, 3.5, 3.5),
        timing("none", 1, 0.5, 0.5, 0.5),
    ]
    assert measured_latency(runtime, "fast", 0.5) == pytest.approx(2.25)
    right = torch.zeros(10, dtype=torch.bool)
    right[:8] = True  # the policies are right on 8 samples
    correct = {("fast", 0.5): right, ("slow", 0.5): right, ("none", 0.5): right}
    rows = [{"method": m, "budget_value": 0.5} for m in ("fast", "slow", "none")] + [{"method": "fast", "budget_value": "all"}]
    frontier_columns(rows, correct, runtime, points, reps=500, seed=0)
    fast, slow, none, summary = rows
    assert (fast["frontier_exit"], fast["frontier_ms"], fast["frontier_accuracy"]) == (1, 2.0, 0.6)  # 2.25 ms: exit 1's cut
    assert fast["vs_frontier"] == pytest.approx(0.2) and fast["vs_frontier_ci_low"] <= 0.2 <= fast["vs_frontier_ci_high"]
    assert (slow["frontier_exit"], slow["vs_frontier"]) == (2, pytest.approx(-0.1))  # slower than the plain network: it wins
    assert none["measured_ms"] == 0.5 and "frontier_exit" not in none and "vs_frontier" not in none  # faster than every cut
    assert "measured_ms" not in summary
