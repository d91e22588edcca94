"""EENet never ends below MaxPred: its fit starts one restart at MaxPred's policy, and a fit that is below MaxPred on
held-out validation falls back to MaxPred's thresholds (``fallback_``), on a synthetic 8-exit network whose early exits
are much less accurate than its late ones (the case where EENet's fit used to fail)."""

import json
import logging

import pytest
import torch

from eenet.schedulers import accepted_params, accuracy, make_scheduler, realised_cost, scheduler_from_json
from eenet.schedulers import eenet as eenet_module

K, C = 8, 10
COSTS = torch.linspace(0.15, 1.0, K, dtype=torch.float64)  # exit 0 costs 0.15 of the last
EXIT_ACCURACY = [0.33, 0.52, 0.66, 0.76, 0.84, 0.89, 0.93, 0.95]
FAST = {"lr": 0.03, "weight_decay": 0.0, "epochs": 60, "patience": 20, "restarts": 2}  # the demo's settings, shorter
PAPER = {"epochs": 60, "patience": 20, "restarts": 2}  # the paper's lr 3e-5: the fit barely moves from its start
BUDGETS = [0.3, 0.45, 0.6]


def eight_exits(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``[8, n, 10]`` softmax outputs and labels: a difficulty shared by the exits, accuracies rising from 33 % to 95 %,
    confidences that track correctness (AUC ~0.8) but are over-confident, most at the early exits."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, C, (n,), generator=g)
    difficulty = torch.randn(n, generator=g)
    rows = torch.arange(n)
    probs = []
    for k, acc in enumerate(EXIT_ACCURACY):
        margin = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(acc)) * 1.28 - difficulty + 0.8 * torch.randn(n, generator=g)
        wrong = (labels + torch.randint(1, C, (n,), generator=g)) % C
        pred = torch.where(margin > 0, labels, wrong)
        confidence = torch.nn.functional.softplus(1.2 * (margin + 1.4 * torch.randn(n, generator=g)) + 2.5 - 0.15 * k)
        logits = 0.8 * torch.randn(n, C, generator=g)
        others = logits.clone()
        others[rows, pred] = -1e9
        logits[rows, pred] = others.max(dim=1).values + confidence
        probs.append(torch.softmax(logits * (2.0 - 0.12 * k), dim=-1))
    return torch.stack(probs), labels


@pytest.fixture(scope="module")
def val8():
    return eight_exits(1000, seed=1)


@pytest.fixture(scope="module")
def test8():
    return eight_exits(2000, seed=2)


def exits_by_leaves(sched, probs: torch.Tensor) -> torch.Tensor:
    """The exits the runtime gives: ``leaves`` exit after exit on the samples still running."""
    exits = torch.full((probs.shape[1],), -1, dtype=torch.long)
    running = torch.arange(probs.shape[1])
    for k in range(probs.shape[0]):
        leave = sched.leaves(k, probs[: k + 1, running])
        exits[running[leave]] = k
        running = running[~leave]
    assert running.numel() == 0
    return exits


@pytest.mark.parametrize("settings", [FAST, PAPER], ids=["demo_lr", "paper_lr"])
@pytest.mark.parametrize("budget", BUDGETS)
def test_eenet_is_not_below_maxpred_on_eight_exits(settings, budget, val8, test8):
    maxpred = make_scheduler("maxpred").fit(*val8, COSTS, budget)
    sched = make_scheduler("eenet", **settings).fit(*val8, COSTS, budget)
    assert sched.val_cost_ <= budget + 1e-12
    assert sched.val_accuracy_ >= maxpred.val_accuracy_ - 0.005
    check = sched.report_["holdout_check"]
    assert (sched.fallback_ is not None) == (check["heldout_accuracy"] < check["heldout_accuracy_maxpred"])
    assert accuracy(*test8, sched.assign(test8[0])) >= accuracy(*test8, maxpred.assign(test8[0])) - 0.01


def test_the_paper_start_alone_fails_and_falls_back_to_maxpred(val8, test8, caplog):
    """Without the MaxPred restart, the paper's learning rate leaves the fit at its random start, far below MaxPred on
    held-out validation: EENet falls back, says so, and then is MaxPred fitted on all of validation."""
    budget = 0.3
    with caplog.at_level(logging.WARNING, logger="eenet.schedulers.eenet"):
        sched = make_scheduler("eenet", **PAPER, maxpred_start=False).fit(*val8, COSTS, budget)
    fb = sched.fallback_
    assert fb["policy"] == "maxpred" and fb["heldout_accuracy"] < fb["heldout_accuracy_maxpred"] - 0.05
    assert fb["samples"] == 200 and fb["margin"] == pytest.approx(fb["heldout_accuracy"] - fb["heldout_accuracy_maxpred"])
    assert any("falls back to MaxPred" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    maxpred = make_scheduler("maxpred").fit(*val8, COSTS, budget)
    assert sched.thresholds_ == maxpred.thresholds_
    for probs, _ in (val8, test8):
        assert torch.equal(sched.assign(probs), maxpred.assign(probs))
    assert sched.val_accuracy_ == maxpred.val_accuracy_ and sched.val_cost_ == maxpred.val_cost_ <= budget
    assert sched.family == maxpred.family  # the runtime times it as MaxPred


def test_garbage_utilities_fall_back_to_maxpred(val8, test8, monkeypatch):
    """A utility network that returns noise (in training and when applied) is caught on held-out validation."""
    real = eenet_module.forward

    def garbage(p, base, assignment=True):
        z, r = real(p, base, assignment)
        noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(z.shape[1]))
        return 0 * z + 10 * noise, r

    monkeypatch.setattr(eenet_module, "forward", garbage)
    sched = make_scheduler("eenet", **FAST).fit(*val8, COSTS, 0.45)
    maxpred = make_scheduler("maxpred").fit(*val8, COSTS, 0.45)
    assert sched.fallback_ is not None
    for probs, _ in (val8, test8):
        assert torch.equal(sched.assign(probs), maxpred.assign(probs))
        assert torch.equal(exits_by_leaves(sched, probs), maxpred.assign(probs))


@pytest.mark.parametrize("fallback", [False, True])
def test_json_round_trip_keeps_the_fallback_and_the_decisions(fallback, val8, test8):
    params = {**PAPER, "maxpred_start": False} if fallback else FAST
    sched = make_scheduler("eenet", **params).fit(*val8, COSTS, 0.3 if fallback else 0.6)
    assert (sched.fallback_ is not None) == fallback
    again = scheduler_from_json(json.loads(json.dumps(sched.to_json())))
    assert again.fallback_ == sched.fallback_ and again.get_params() == sched.get_params()
    probs = test8[0]
    exits = sched.assign(probs)
    assert torch.equal(again.assign(probs), exits)
    assert torch.equal(exits_by_leaves(again, probs), exits)  # the runtime decides as the cache does
    for n in range(0, 2000, 97):  # batch 1
        one = [probs[j, n : n + 1] for j in range(K)]
        assert next(k for k in range(K) if again.leaves_one(k, one[: k + 1])) == int(exits[n])
    assert realised_cost(again.assign(val8[0]), COSTS) <= again.budget_


def test_the_check_is_a_parameter_and_files_without_it_still_load(val8, caplog):
    assert make_scheduler("eenet").holdout == 0.2 and make_scheduler("eenet").maxpred_start is True
    block = {"lr": 0.1, "holdout": 0.3, "maxpred_start": False}
    assert accepted_params("eenet", block) == block and accepted_params("eenet_geo", block) == block
    with pytest.raises(ValueError, match="holdout"):
        make_scheduler("eenet", holdout=1.0)
    with caplog.at_level(logging.INFO, logger="eenet.schedulers.eenet"):
        checked = make_scheduler("eenet", **FAST).fit(*val8, COSTS, 0.6)
    assert any("held-out margin over MaxPred" in r.getMessage() for r in caplog.records)  # said in every case
    assert set(checked.report_["holdout_check"]) >= {"heldout_accuracy", "heldout_accuracy_maxpred", "margin", "samples"}
    off = make_scheduler("eenet", **FAST, holdout=0.0).fit(*val8, COSTS, 0.6)
    assert off.fallback_ is None and "holdout_check" not in off.report_
    doc = off.to_json()  # a file written before the check: no holdout, maxpred_start or fallback
    del doc["state"]["fallback"]
    for key in ("holdout", "maxpred_start"):
        del doc["state"]["params"][key]
    again = scheduler_from_json(json.loads(json.dumps(doc)))
    assert again.fallback_ is None and torch.equal(again.assign(val8[0]), off.assign(val8[0]))
