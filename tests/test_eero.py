"""EERO (Valade, Hebiri and Gay, UAI 2025; eenet.schedulers.eero) on constructed outputs where the answer is known: with
two exits it is MaxPred at the same budget (the share leaving at exit 0 is the budget's, by hand); the exponential
weights concentrate on a planted best exit, and with a binding budget on it and the exit before it, where the policy is
the two-exit threshold rule; the weights carry the paper's prior 1/c; each exit's threshold is a quantile of all the
samples' scores at the cumulative rate (the paper's eqs. 8-9, not the share of those still running); the weights are
those of the formula; the temperature is the paper's 0.04, or the most accurate on validation; and it meets every
budget, round-trips, decides exit by exit, in the runtime, after a combiner and exported."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from helpers import COSTS, accuracy_of, exits_from_logits_step_by_step, exits_step_by_step, make_probs, one_thread, runs_as_it_assigns  # noqa: F401  (one_thread: autouse)

from eenet.models import build_model
from eenet.pipeline.planning import hyper_params
from eenet.schedulers import EEROScheduler, InfeasibleBudgetError, accepted_params, fit_policy, make_scheduler, scheduler_from_json
from eenet.schedulers.base import assign_by_thresholds, realised_cost
from eenet.schedulers.eero import BETA, TEMPERATURES, cumulative_thresholds, exit_risks, expected_cost, exponential_weights

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
PLANTED_COSTS = [0.25, 0.5, 0.75, 1.0]


def calibrated(n: int, accuracies: tuple[float, ...], seed: int, c: int = 10, width: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Exits calibrated alike: at exit ``k`` a sample's max probability ``m`` is Uniform(a_k - width, a_k + width)
    (clipped) and the exit is right with probability ``m``, the rest ``1 - m`` spread evenly; ``(probs [K, n, c],
    labels [n])``. Exit ``k``'s accuracy is then ~``a_k``."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.arange(n)
    labels = torch.randint(0, c, (n,), generator=g)
    out = []
    for a in accuracies:
        m = (a + width * (2 * torch.rand(n, generator=g) - 1)).clamp(1.0 / c + 0.01, 0.999)
        right = torch.rand(n, generator=g) < m
        top = torch.where(right, labels, (labels + 1 + torch.randint(0, c - 1, (n,), generator=g)) % c)
        p = ((1 - m) / (c - 1)).unsqueeze(1).repeat(1, c)
        p[rows, top] = m
        out.append(p)
    return torch.stack(out).float(), labels


# ---------------------------------------------------------------------------------------------------
# known answers


@pytest.mark.parametrize("temperature", [0.01, BETA])
def test_with_two_exits_eero_is_maxpred_with_the_budgets_share_at_exit_0(temperature):
    """Two exits, a binding budget: the expected cost fixes the rate at exit 0, q_0 = (c_1 - b) / (c_1 - c_0), and the
    reject option keeps the most confident ceil(N q_0 (1 + 1/sqrt N)) samples there: MaxPred's rule with the paper's
    finite-sample margin (a few samples more leave early), sample for sample on validation and test."""
    val, yv = make_probs(n=3000, k=2, seed=1)
    test, _ = make_probs(n=4000, k=2, seed=2)
    costs = [0.4, 1.0]
    for budget in (0.5537, 0.7013, 0.8519):
        eero = make_scheduler("eero", temperature=temperature).fit(val, yv, costs, budget)
        q0 = (1.0 - budget) / 0.6
        assert eero.lambda_ > 0 and eero.exit_distribution_[0] == pytest.approx(q0, abs=1e-8)  # the budget less 1e-9 of it
        n0 = math.ceil(3000 * q0 * (1 + 1 / math.sqrt(3000)) - 1e-9)
        exits = eero.assign(val)
        assert int((exits == 0).sum()) == n0, (budget, int((exits == 0).sum()), n0)
        scores = val[0].max(dim=1).values  # exit 0 keeps exactly the n0 most confident samples
        assert float(scores[exits == 0].min()) >= float(scores[exits == 1].max())
        assert eero.val_cost_ <= budget and eero.val_cost_ == pytest.approx((0.4 * n0 + 3000 - n0) / 3000)
        t0 = eero.thresholds_[0]  # the same rule on test
        assert torch.equal(eero.assign(test), (test[0].max(dim=1).values < t0).long())


def test_the_weights_carry_the_papers_prior_one_over_the_cost():
    """Equal risks and a budget that does not bind (λ = 0): the rates are the prior, π_k ∝ 1/c_k, whatever β."""
    risks, costs = torch.full((3,), 0.2, dtype=torch.float64), torch.tensor([1.0, 2.0, 4.0])
    for beta in (0.01, BETA, 1.0):
        assert exponential_weights(risks, costs, 0.0, beta).tolist() == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (700,), generator=g)
    same = F.softmax(torch.randn(1, 700, 5, generator=g), dim=2).expand(3, -1, -1).contiguous()  # one risk for every exit
    sched = make_scheduler("eero").fit(same, labels, [1.0, 2.0, 4.0], 4.0)
    assert sched.lambda_ == 0.0 and sched.exit_distribution_ == pytest.approx([4 / 7, 2 / 7, 1 / 7])


def test_each_threshold_is_a_quantile_of_every_samples_score_at_the_cumulative_rate():
    """The paper's eqs. 8-9: exit k answers the samples whose score is among the highest Q_k = q_0 + ... + q_k share of
    all N scores there, those that left earlier included. With exit 1's scores in the reverse order of exit 0's, the 3
    most confident at exit 0 leave there and exit 1's 6 highest are all still running: rates (0.3, 0.6, 0.1), where the
    share of the samples still running would give (0.3, 0.3, 0.4)."""
    n = 10
    s0 = torch.linspace(0.9, 0.1, n)
    scores = torch.stack([s0, s0.flip(0), torch.zeros(n)])
    q = torch.tensor([0.3, 0.3, 0.4], dtype=torch.float64)
    th = cumulative_thresholds(scores, q / (1 + 1 / math.sqrt(n)))  # the margin removed: exactly 3 and 6 samples
    exits = assign_by_thresholds(scores, th)
    assert torch.bincount(exits, minlength=3).tolist() == [3, 6, 1]
    assert float(th[-1]) == -math.inf and float(cumulative_thresholds(scores, torch.tensor([0.0, 0.0, 1.0]))[0]) == math.inf
    # with the margin: ceil(N Q_k (1 + 1/sqrt N)) samples at or above T_k, so at least a share Q_k has left by exit k
    val, yv = make_probs(n=2000, k=3, seed=4)
    sched = make_scheduler("eero").fit(val, yv, COSTS, 0.6)
    ex, qs = sched.assign(val), torch.tensor(sched.exit_distribution_, dtype=torch.float64)
    left = torch.cumsum(torch.bincount(ex, minlength=3).double() / 2000, dim=0)
    assert bool((left >= torch.cumsum(qs, 0) - 1e-9).all()), (left, qs)
    assert sched.val_cost_ <= expected_cost(qs, torch.tensor(COSTS)) + 1e-12 <= 0.6 + 1e-9  # Theorem 3.12's consequence


def test_the_weights_concentrate_on_a_planted_best_exit_and_spend_less_than_an_idle_budget():
    """Exit 1 right ~98 % of the time, exits 2 and 3 (dearer) 60 %, exit 0 30 %: at a budget that pays for the last
    exit, λ = 0 and the weights sit on exit 1 (EERO does not overthink), where MaxPred spends the budget on exit 3."""
    acc = (0.3, 0.99, 0.6, 0.6)
    val, yv = calibrated(3000, acc, seed=0)
    test, yt = calibrated(10000, acc, seed=1)
    eero = make_scheduler("eero", temperature=0.01).fit(val, yv, PLANTED_COSTS, 1.0)
    q = eero.exit_distribution_
    assert eero.lambda_ == 0.0 and q[1] > 0.999, q  # e^{-0.39/0.01} ~ 1e-17 left for exits 2 and 3
    exits = eero.assign(test)
    assert float((exits == 1).double().mean()) > 0.999
    assert eero.val_cost_ <= 0.5 + 1e-3  # half the budget: exit 1's cost
    maxpred = make_scheduler("maxpred").fit(val, yv, PLANTED_COSTS, 1.0)
    acc_e, acc_m = accuracy_of(test, yt, exits), accuracy_of(test, yt, maxpred.assign(test))
    assert acc_e > 0.95 and acc_e > acc_m + 0.3, (acc_e, acc_m)  # 0.981 against 0.596 when written
    chosen = make_scheduler("eero", temperature=None).fit(val, yv, PLANTED_COSTS, 1.0)  # β chosen on validation: the same
    assert chosen.exit_distribution_[1] > 0.99 and accuracy_of(test, yt, chosen.assign(test)) > 0.95


def test_a_binding_budget_below_the_best_exit_is_the_two_exit_threshold_rule():
    """Budget 0.4, between exits 0 (0.25) and 1 (0.5): the weights sit on those two, λ > 0 meets the budget, and the
    policy is MaxPred on the network of exits 0 and 1 alone: exit 0 keeps its most confident samples, exit 1 the rest."""
    acc = (0.3, 0.99, 0.6, 0.6)
    val, yv = calibrated(3000, acc, seed=0)
    test, _ = calibrated(10000, acc, seed=1)
    eero = make_scheduler("eero", temperature=0.01).fit(val, yv, PLANTED_COSTS, 0.4)
    q = eero.exit_distribution_
    assert eero.lambda_ > 0 and q[2] + q[3] < 1e-6 and 0.3 < q[0] < 0.5, q  # (0.5 - 0.4) / (0.5 - 0.25) = 0.4 at exit 0
    n0 = math.ceil(3000 * q[0] * (1 + 1 / math.sqrt(3000)) - 1e-9)  # the paper's margin: a few more leave at exit 0
    assert eero.val_cost_ == pytest.approx((0.25 * n0 + 0.5 * (3000 - n0)) / 3000) and 0.398 < eero.val_cost_ <= 0.4
    two = make_scheduler("maxpred").fit(val[:2], yv, PLANTED_COSTS[:2], eero.val_cost_ + 1e-12)  # at the cost EERO spends
    exits = eero.assign(test)
    assert float((exits <= 1).double().mean()) > 0.999
    assert float((exits == two.assign(test[:2])).double().mean()) > 0.995


def test_the_weights_risks_and_multiplier_are_the_formulas():
    probs = torch.tensor([[[0.6, 0.4], [0.3, 0.7], [0.8, 0.2]], [[0.1, 0.9], [0.2, 0.8], [0.9, 0.1]]])  # K=2, N=3
    assert exit_risks(probs, torch.tensor([0, 0, 0])).tolist() == pytest.approx([1 / 3, 2 / 3])
    risks, costs = torch.tensor([0.3, 0.1, 0.05], dtype=torch.float64), torch.tensor([1.0, 2.0, 4.0])
    c = torch.tensor([0.25, 0.5, 1.0], dtype=torch.float64)
    want = (1 / c) * torch.exp(-(risks + 0.2 * c) / 0.1)
    assert torch.allclose(exponential_weights(risks, costs, 0.2, 0.1), want / want.sum())
    val, yv = make_probs(n=2000, k=3, seed=1)
    sched = make_scheduler("eero", temperature=0.05).fit(val, yv, COSTS, 0.6)
    r = (val.argmax(dim=2) != yv).double().mean(dim=1)
    assert sched.risks_ == pytest.approx(r.tolist())
    cn = torch.tensor(COSTS, dtype=torch.float64) / 1.0

    def q(lam: float) -> torch.Tensor:
        w = torch.exp(-(r + lam * cn) / 0.05) / cn
        return w / w.sum()

    assert sched.exit_distribution_ == pytest.approx(q(sched.lambda_).tolist()) and sched.lambda_ > 0
    # λ meets the budget in expectation (Proposition 3.8): the expected cost is the budget, a little less λ exceeds it
    assert expected_cost(q(sched.lambda_), cn) == pytest.approx(0.6, abs=1e-9)
    assert expected_cost(q(0.99 * sched.lambda_), cn) > 0.6
    assert make_scheduler("eero", temperature=0.05).fit(val, yv, COSTS, 0.6).to_json() == sched.to_json()  # deterministic


def test_the_temperature_is_the_most_accurate_on_validation():
    val, yv = make_probs(n=2000, k=3, seed=1)
    chosen = make_scheduler("eero", temperature=None).fit(val, yv, COSTS, 0.55)
    assert [s["temperature"] for s in chosen.selection_] == list(TEMPERATURES)
    accs = {s["temperature"]: s["val_accuracy"] for s in chosen.selection_}
    assert chosen.temperature_ == min(t for t in TEMPERATURES if accs[t] == max(accs.values()))
    assert all(s["val_cost"] <= 0.55 for s in chosen.selection_)
    fixed = make_scheduler("eero", temperature=chosen.temperature_).fit(val, yv, COSTS, 0.55)
    assert fixed.thresholds_ == chosen.thresholds_ and chosen.val_accuracy_ == accs[chosen.temperature_]
    assert fixed.val_accuracy_ == chosen.val_accuracy_ and [s["temperature"] for s in fixed.selection_] == [chosen.temperature_]


# ---------------------------------------------------------------------------------------------------
# the budget, JSON, the runtime, combiners, export


def test_meets_every_budget_on_validation_and_refuses_what_it_cannot(val_data):
    probs, labels = val_data
    for budget in (0.32, 0.4, 0.5, 0.65, 0.8, 1.0):
        for temperature in (None, 0.003, 1.0):
            sched = make_scheduler("eero", temperature=temperature).fit(probs, labels, COSTS, budget)
            assert sched.val_cost_ <= budget, (budget, temperature, sched.val_cost_)
            assert realised_cost(sched.assign(probs), torch.tensor(COSTS, dtype=torch.float64)) == sched.val_cost_
    with pytest.raises(InfeasibleBudgetError):
        make_scheduler("eero").fit(probs, labels, COSTS, 0.2)
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature"):
            make_scheduler("eero", temperature=bad)


@pytest.mark.parametrize("temperature", [None, 0.05])
def test_round_trips_and_decides_exit_by_exit_as_it_assigns(val_data, test_data, temperature):
    probs, labels = val_data
    a = make_scheduler("eero", temperature=temperature).fit(probs, labels, COSTS, 0.6)
    again = scheduler_from_json(json.loads(json.dumps(a.to_json())))  # thresholds[-1] = -inf travels as -Infinity
    assert isinstance(again, EEROScheduler) and again.get_params() == a.get_params() == {"temperature": temperature}
    assert again.to_json() == a.to_json() and again.exit_distribution_ == a.exit_distribution_
    exits = a.assign(test_data[0])
    assert torch.equal(again.assign(test_data[0]), exits) and len(set(exits.tolist())) == 3
    batched, one = exits_step_by_step(again, test_data[0][:, :400])
    assert torch.equal(batched, exits[:400]) and one == exits[:400].tolist()
    assert not a.needs_logits


def test_runs_in_the_runtime_as_it_assigns():
    # labelled by the last exit's answers: exits that agree with it are "right"
    runs_as_it_assigns("eero", {}, lambda sched, val: sched.fit(val, val[-1].argmax(dim=1), COSTS, 0.6))


def test_composes_with_a_combiner(val_data, test_data):
    g = torch.Generator().manual_seed(0)
    val_logits = torch.log(val_data[0].double().clamp_min(1e-9)).float() + 0.01 * torch.randn(val_data[0].shape, generator=g)
    test_logits = torch.log(test_data[0].double().clamp_min(1e-9)).float()[:, :400]
    sched = fit_policy("ztw_ens+eero", {"temperature": None, "seed": 3}, torch.softmax(val_logits, 2), val_logits, val_data[1], COSTS, 0.6)
    assert sched.method == "ztw_ens+eero" and sched.needs_logits and sched.val_cost_ <= 0.6
    again = scheduler_from_json(json.loads(json.dumps(sched.to_json())))
    outs = again.outputs({"probs": torch.softmax(test_logits, 2), "logits": test_logits})
    exits = sched.assign(outs)
    assert torch.equal(again.assign(outs), exits) and len(set(exits.tolist())) > 1
    assert torch.equal(exits_from_logits_step_by_step(again, test_logits), exits)  # as the runtime runs it


def test_the_exported_program_decides_as_it_assigns():
    """EERO decides on the max probability against per-exit thresholds, as MaxPred: the export takes it (eager here)."""
    from eenet.data import normalize
    from eenet.export import ExitProgram

    torch.manual_seed(0)
    model = build_model("small_cnn_3", 10, 1, width=4).eval()
    with torch.no_grad():  # heads less unsure than at initialisation: the max probabilities spread apart
        for head in model.heads:
            for m in head.modules():
                if isinstance(m, torch.nn.Linear):
                    m.weight.mul_(20.0)
    mean, std = (0.5,), (0.5,)
    images = torch.randint(0, 256, (260, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        probs = torch.stack([F.softmax(z.float(), dim=1) for z in model(normalize(images, mean, std))])
    labels = probs[-1].argmax(dim=1)
    sched = make_scheduler("eero").fit(probs[:, :200], labels[:200], COSTS, 0.6)
    program = ExitProgram(model, sched, mean, std).eval()
    with torch.inference_mode():
        got = [int(program(images[i : i + 1])[1]) for i in range(200, 260)]
    want = sched.assign(probs[:, 200:]).tolist()
    assert got == want and len(set(want)) > 1


def test_schema_block_is_the_code_default_and_reaches_the_fit():
    props = yaml.safe_load(SCHEMA.read_text())["properties"]["benchmarks"]["additionalProperties"]["properties"]
    code = {k: p.default for k, p in inspect.signature(EEROScheduler.__init__).parameters.items() if k != "self"}
    assert {k: v["default"] for k, v in props["eero"]["properties"].items()} == code == {"temperature": BETA} == {"temperature": 0.04}
    assert "eero" in props["methods"]["items"]["enum"]
    bench = {"eero": {"temperature": 0.05}, "scheduler_seed": 4}
    assert hyper_params(bench, "ztw_ens+eero") == {"temperature": 0.05, "seed": 4}
    assert accepted_params("eero", hyper_params(bench, "eero")) == {"temperature": 0.05}
