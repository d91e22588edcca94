"""A policy's own decision work per exit (eenet.measure.overhead) and the fits against it (fit_budgets' overhead):
constructed cases whose answer is known, timed on a test clock (helpers.FakeClock) that only a deliberately slow
decision, or the clock's own reads, advance."""

from __future__ import annotations

import types

import pytest
import torch
from helpers import FakeClock, make_probs

from eenet.analysis.evaluation import evaluate_policy
from eenet.measure.overhead import decision_overhead, effective_costs
from eenet.schedulers import fit_budgets, make_scheduler, realised_cost, scheduler_from_json

K = 6
COSTS = [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]  # ms: of the order of the 2 ms delay, so that the delay moves the fit


class Slowed:
    """A fitted policy whose batch-1 work takes ``delay`` ms more on ``clock`` (a :class:`helpers.FakeClock`): at
    ``leaves_one`` (``where="leaves"``) or at ``exit_outputs`` (``"outputs"``). ``bursts``: the calls (counted from 1)
    that take ``burst`` ms more still, as when another process takes the core."""

    def __init__(self, policy, delay: float, clock: FakeClock, where: str = "leaves", bursts=(), burst: float = 50.0) -> None:
        self.policy, self.delay, self.clock, self.where = policy, delay, clock, where
        self.bursts, self.burst, self.calls = set(bursts), burst, 0

    def __getattr__(self, name):
        return getattr(self.policy, name)

    def _spend(self) -> None:
        self.calls += 1
        self.clock.advance((self.delay + (self.burst if self.calls in self.bursts else 0.0)) / 1000)

    def exit_outputs(self, k, logits):
        if self.where == "outputs":
            self._spend()
        return self.policy.exit_outputs(k, logits)

    def outputs_from_states(self, k, states, logits):  # a combined policy's incremental step in the runtime
        if self.where == "outputs":
            self._spend()
        return self.policy.outputs_from_states(k, states, logits)

    def leaves_one(self, k, seen):
        if self.where == "leaves":
            self._spend()
        return self.policy.leaves_one(k, seen)

    def leaves(self, k, seen):  # the batched path: the same delay for the whole batch
        if self.where == "leaves":
            self._spend()
        return self.policy.leaves(k, seen)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture(scope="module")
def val():
    probs, labels = make_probs(1000, K, 10, seed=1)
    return probs, probs.clamp_min(1e-30).log(), labels


def test_effective_costs_add_the_decisions_at_every_exit_up_to_the_one_left_at():
    assert effective_costs([1.0, 2.0, 4.0], [0.5, 0.25, 0.0]) == pytest.approx([1.5, 2.75, 4.75])
    with pytest.raises(ValueError, match="2 decision costs for 3 exits"):
        effective_costs([1.0, 2.0, 4.0], [0.5, 0.25])


def test_a_slow_decision_is_counted_at_every_exit_but_the_last(val, clock):
    probs, logits, labels = val
    sched = make_scheduler("maxpred").fit(probs, labels, COSTS, 7.0)
    got = decision_overhead(Slowed(sched, 2.0, clock), logits, probs, repeats=3, samples=20, evict_bytes=0, clock=clock)
    # the last exit asks no decision (everything leaves there); the baseline costs nothing on this clock
    assert got == pytest.approx([2.0] * (K - 1) + [0.0])
    # nothing but the slow part counts
    assert decision_overhead(sched, logits, probs, repeats=3, samples=20, evict_bytes=0, clock=clock) == [0.0] * K


def test_the_networks_stage_runs_untimed_before_every_timed_decision_at_its_exit(val, clock):
    """Given the network's stages, the decision at exit k is timed right after stage k has run (in place of the
    buffer), for the policy's call and the baseline's alike; the stage's time is never counted."""
    probs, logits, labels = val
    sched = make_scheduler("maxpred").fit(probs, labels, COSTS, 7.0)
    ran = []

    def stage(k):
        ran.append((k, clock.reads))
        clock.advance(0.005)  # 5 ms of network: not the decision's

    got = decision_overhead(
        Slowed(sched, 2.0, clock), logits, probs, repeats=3, samples=4, warmup=1, evict_bytes=0, clock=clock, stage=stage
    )
    assert got == pytest.approx([2.0] * (K - 1) + [0.0])
    assert [k for k, _ in ran] == [k for _ in range(4 * 4) for k in range(K) for _ in range(2)]  # before each of the pair
    assert all(b - a == 2 for (_, a), (_, b) in zip(ran, ran[1:], strict=False))  # one timed call (two reads) between


def test_network_stages_run_the_models_stage_and_head_at_each_exit():
    from eenet.measure.overhead import network_stages
    from eenet.models import build_model

    model = build_model("small_cnn_3", num_classes=10, in_channels=1).eval()
    x = torch.randn(2, 1, 28, 28)
    stage = network_stages(model, x)
    with torch.inference_mode():
        want = model(x)  # [K, B, C]: every exit's logits
    for k in range(model.num_exits):
        _, logits = stage(k)
        assert torch.allclose(logits, want[k], atol=1e-6)


def test_a_slow_combiner_step_is_counted_at_every_exit_the_last_included(val, clock):
    probs, logits, labels = val
    (sched,) = fit_budgets("ztw_ens+maxpred", {}, probs, logits, labels, COSTS, [7.0])
    got = decision_overhead(Slowed(sched, 1.0, clock, where="outputs"), logits, probs, repeats=3, samples=20, evict_bytes=0, clock=clock)
    assert got == pytest.approx([1.0] * K)  # exit_outputs runs at every exit, the last included


def test_the_oracle_and_a_single_exit_decide_nothing(val, clock):
    probs, logits, labels = val
    oracle = make_scheduler("oracle").fit(probs, labels, COSTS, 7.0)
    static = make_scheduler("static", exit_index=2).fit(probs, labels, COSTS, 6.0)
    assert decision_overhead(oracle, logits, probs) == [0.0] * K
    slowed = decision_overhead(Slowed(static, 2.0, clock), logits, probs, repeats=3, samples=20, evict_bytes=0, clock=clock)
    assert slowed == pytest.approx([2.0] * (K - 1) + [0.0])  # a wrapper is not a single exit: timed
    assert decision_overhead(static, logits, probs) == [0.0] * K  # untimed: it decides nothing


def test_what_cost_csv_already_holds_is_subtracted_and_a_burst_of_load_is_left_out(val):
    """Every timed call costs the clock's reads (0.3 ms a read here), the policy's and the baseline's alike: the
    difference is the slow part alone, exactly. A 50 ms burst in the warm-up pass and in two timed calls moves no
    median. Without raw logits (log(probs)) the same is timed."""
    probs, logits, labels = val
    sched = make_scheduler("maxpred").fit(probs, labels, COSTS, 7.0)
    clock = FakeClock(tick=0.0003)
    assert decision_overhead(sched, logits, probs, repeats=3, samples=20, evict_bytes=0, clock=clock) == pytest.approx([0.0] * K, abs=1e-9)
    # 20 samples x 5 decisions a pass: calls 1-100 are the warm-up pass, 101-400 the timed ones
    slowed = Slowed(sched, 2.0, clock, bursts=(50, 101, 222))
    got = decision_overhead(slowed, logits, probs, repeats=3, samples=20, evict_bytes=0, clock=clock)
    assert slowed.calls == 400 and got == pytest.approx([2.0] * (K - 1) + [0.0], abs=1e-9)
    without_logits = decision_overhead(Slowed(sched, 2.0, clock), None, probs, repeats=3, samples=20, evict_bytes=0, clock=clock)
    assert without_logits == pytest.approx([2.0] * (K - 1) + [0.0], abs=1e-9)
    # a burst in most calls of an exit is no burst: it is the decision's time
    slowed = Slowed(sched, 2.0, clock, bursts=range(101, 401, 5))  # every 5th timed call: exit 0's
    assert decision_overhead(slowed, logits, probs, repeats=3, samples=20, evict_bytes=0, clock=clock) == pytest.approx(
        [52.0] + [2.0] * (K - 2) + [0.0], abs=1e-9
    )


def test_fitted_with_a_slow_decision_it_leaves_earlier_and_its_effective_cost_meets_the_budget(val, clock):
    probs, logits, labels = val
    budgets = [7.0, 9.0]

    def overhead(probe):
        return decision_overhead(Slowed(probe, 2.0, clock), logits, probs, repeats=3, samples=20, evict_bytes=0, clock=clock)

    plain = fit_budgets("maxpred", {}, probs, logits, labels, COSTS, budgets)
    slow = fit_budgets("maxpred", {}, probs, logits, labels, COSTS, budgets, overhead=overhead)
    effective = effective_costs(COSTS, [2.0] * (K - 1) + [0.0])
    for budget, p, s in zip(budgets, plain, slow, strict=True):
        assert s.decision_ms_ == pytest.approx([2.0] * (K - 1) + [0.0])
        assert s.costs_ == pytest.approx(effective) and p.costs_ == COSTS
        exits_plain, exits_slow = p.assign(probs), s.assign(probs)
        mean_plain, mean_slow = exits_plain.double().mean(), exits_slow.double().mean()
        assert mean_slow < mean_plain - 0.5, (budget, mean_plain, mean_slow)
        assert s.val_cost_ <= budget and realised_cost(exits_slow, torch.tensor(effective)) <= budget + 1e-9
        assert realised_cost(exits_plain, torch.tensor(effective)) > budget  # the plain fit would overrun on the clock
    # a budget the decisions make unreachable is infeasible: exit 0 alone costs 2 + 2 ms
    (too_low,) = fit_budgets("maxpred", {}, probs, logits, labels, COSTS, [3.0], overhead=overhead)
    assert isinstance(too_low, ValueError) and "below" in str(too_low)


def test_the_json_round_trips_with_the_effective_costs_and_the_evaluation_charges_them(val, clock):
    probs, logits, labels = val
    decision = [0.5] * (K - 1) + [0.0]
    (sched,) = fit_budgets("ztw_ens+maxpred", {}, probs, logits, labels, COSTS, [8.0], overhead=lambda probe: decision)
    effective = effective_costs(COSTS, decision)
    # what fit_scheduler writes beside the policy
    record = {"bench": "b", "budget_value": 8.0, "budget_unit": "ms", "budget_ms": 8.0, "device": "cpu", "logits_model_sha256": "m",
              "exit_ms": COSTS, "decision_ms": sched.decision_ms_}  # fmt: skip
    doc = {**record, **sched.to_json()}
    assert doc["costs"] == pytest.approx(effective) and doc["decision_ms"] == decision
    back = scheduler_from_json(doc)
    assert back.costs_ == pytest.approx(effective) and back.method == "ztw_ens+maxpred"
    cache = {"probs": probs, "logits": logits, "labels": labels}
    assert torch.equal(back.assign(back.outputs(cache)), sched.assign(sched.outputs(cache)))
    row = evaluate_policy(
        doc, cache, {"model_sha256": "m"}, COSTS, [1] * K, bench="b", method="ztw_ens+maxpred", device="cpu", tolerance=0.05
    )
    exits = back.assign(back.outputs(cache))
    assert row["test_cost_ms"] == pytest.approx(realised_cost(exits, torch.tensor(effective)))
    assert row["test_cost_ms"] > realised_cost(exits, torch.tensor(COSTS))


def test_the_runtime_simulates_a_policy_with_its_own_effective_costs():
    import logging

    from helpers import cached_probs

    from eenet.measure.runtime import measure_runtime
    from eenet.models import build_model

    torch.manual_seed(0)
    model = build_model("small_cnn_3", 10, 1, width=4).eval()
    x = torch.randn(40, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    probs = cached_probs(model, x)
    labels = probs[-1].argmax(1)
    costs = [0.05, 0.1, 0.2]
    (sched,) = fit_budgets("maxpred", {}, probs, None, labels, costs, [0.15], overhead=lambda probe: [0.01, 0.02, 0.0])
    effective = torch.tensor(effective_costs(costs, [0.01, 0.02, 0.0]), dtype=torch.float64)
    cfg = {"samples": None, "seconds": None, "min_samples": 16, "batch_size": 8, "warmup": 0, "repeats": 1}
    rows = measure_runtime(model, {"m": sched}, lambda idx, dev: x[idx], probs, labels, costs, cfg, torch.device("cpu"),
                           logging.getLogger("test-overhead"))  # fmt: skip
    exits = sched.assign(probs)
    for r in rows:
        assert r["exits_agree"] == 1.0
        assert r["test_simulated_ms"] == pytest.approx(realised_cost(exits, effective))


def test_at_cost_csvs_batch_size_the_decision_is_timed_batched_and_counted_per_sample(val, clock):
    """cost.csv's costs are per sample at its batch size: a decision of 2 ms per call of a batch of 4 is 0.5 ms a sample."""
    probs, logits, labels = val
    sched = make_scheduler("maxpred").fit(probs, labels, COSTS, 7.0)
    got = decision_overhead(Slowed(sched, 2.0, clock), None, probs, repeats=3, samples=40, batch_size=4, evict_bytes=0, clock=clock)
    assert got == pytest.approx([0.5] * (K - 1) + [0.0])


def test_the_same_run_check_uses_the_single_exits_timed_beside_the_policy():
    """A machine 30 % slower than when cost.csv was timed: measured/simulated says 1.3 for everything, the same-run
    check 1.0 for a policy whose cost the model gets right, and it counts the policy's decisions."""
    from eenet.measure.overhead import same_run_check

    costs = [1.0, 2.0, 3.0]
    sched = types.SimpleNamespace(costs_=[1.5, 3.0, 4.0])  # effective: 0.5 ms of decisions at exit 0, 0.5 more at 1
    rows = [{"name": f"static_exit{k}", "batch_size": 1, "measured_ms": 1.3 * c, "exit_histogram": "[]"} for k, c in enumerate(costs)]
    # half the samples leave at exit 0, half at 2: 0.5 (1.3 + 0.5) + 0.5 (3.9 + 1.0) = 3.35 ms
    rows += [{"name": "p", "batch_size": 1, "measured_ms": 3.35, "exit_histogram": "[5, 0, 5]"},
             {"name": "p", "batch_size": 16, "measured_ms": 1.0, "exit_histogram": "[5, 0, 5]"}]  # fmt: skip
    same_run_check(rows, {"p": sched}, costs)
    assert rows[3]["same_run_simulated_ms"] == pytest.approx(3.35) and rows[3]["measured_vs_same_run"] == pytest.approx(1.0)
    assert "measured_vs_same_run" not in rows[4]  # batch 1 only (the decisions were timed at cost.csv's batch size)


def test_a_fit_that_decides_as_another_kind_of_policy_is_refitted_against_its_own_overhead(val, monkeypatch):
    """The overhead is measured on a preliminary fit (the largest budget); a budget whose fit decides as another kind of
    policy (EENet fallen back to MaxPred) pays that kind's overhead: it is measured and the budget fitted again."""
    import eenet.schedulers.compose as compose
    from eenet.schedulers.threshold import MaxPredScheduler

    class Switching(MaxPredScheduler):  # decides as a costly kind at large budgets, as plain MaxPred below 7 ms
        @property
        def family(self):
            return "Costly" if self.budget_ >= 7.0 else "MaxPredScheduler"

    monkeypatch.setattr(compose, "make_scheduler", lambda method, **params: Switching())
    probs, _, labels = val

    def overhead(sched):
        return [1.0] * (K - 1) + [0.0] if sched.family == "Costly" else [0.0] * K

    low, high = fit_budgets("maxpred", {}, probs, None, labels, COSTS, [5.0, 9.0], overhead=overhead)
    assert high.decision_ms_ == [1.0] * (K - 1) + [0.0] and high.costs_ == pytest.approx(effective_costs(COSTS, high.decision_ms_))
    assert low.decision_ms_ == [0.0] * K and low.costs_ == pytest.approx(COSTS)  # refitted against its own: none
    plain = make_scheduler("maxpred").fit(probs, labels, COSTS, 5.0)
    assert torch.equal(low.assign(probs), plain.assign(probs))
