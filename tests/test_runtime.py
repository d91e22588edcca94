"""The adaptive runtime: samples really leave, and they leave where the cached-logit evaluation says."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from helpers import cached_probs, make_inputs, make_probs

from eenet.measure.runtime import adaptive_forward, run_split, runnable_policies, stratified_sample
from eenet.models import build_model
from eenet.schedulers import fit_budgets, make_scheduler

FAST_EENET = {"lr": 0.01, "epochs": 15, "patience": 10, "restarts": 2}

# architecture, builder arguments, input: ("image", C, H) or ("text", vocabulary)
ARCHS = [
    ("small_cnn_3", {"width": 4}, ("image", 1, 28)),
    ("resnet_6", {"width": 4}, ("image", 1, 28)),
    ("resnet56_3", {"blocks": (1, 1, 1), "width": 4}, ("image", 3, 32)),
    ("densenet121_4", {"growth": 4, "blocks": (1, 1, 1, 1)}, ("image", 3, 32)),
    ("msdnet", {"blocks": 3, "base": 1, "step": 1, "channels": 4, "growth": 4}, ("image", 3, 224)),
    ("minilm_3", {"num_hidden_layers": 3, "exit_layers": [1, 2, 3]}, ("text", 30522)),
    ("bert_4", {"random_init": True, "num_hidden_layers": 4, "exit_layers": [1, 2, 3, 4]}, ("text", 30522)),
]


@pytest.fixture(scope="module", params=ARCHS, ids=[a[0] for a in ARCHS])
def net(request):
    arch, kwargs, kind = request.param
    torch.manual_seed(0)
    model = build_model(arch, 5, kind[1] if kind[0] == "image" else None, **kwargs).double().eval()
    val = cached_probs(model, make_inputs(kind, 48, 1))
    labels = torch.randint(0, 5, (48,), generator=torch.Generator().manual_seed(2))
    costs = [float(k + 1) for k in range(model.num_exits)]
    return model, kind, val, labels, costs


@pytest.mark.parametrize("method", ["maxpred", "entropy", "eenet", "static", "patience", "maxpred_ts", "entropy_opt", "eenet_noclass"])
def test_runtime_decides_and_predicts_as_the_cached_evaluation(net, method):
    model, kind, val, labels, costs = net
    params = FAST_EENET if method.startswith("eenet") else {"exit_index": 1} if method == "static" else {}
    sched = make_scheduler(method, **params).fit(val, labels, costs, 0.5 * (costs[0] + costs[-1]))
    x = make_inputs(kind, 40, 3)
    probs = cached_probs(model, x)
    want_exits = sched.assign(probs)
    want_preds = probs.argmax(dim=2).gather(0, want_exits.view(1, -1)).squeeze(0)
    preds, exits = adaptive_forward(model, sched, x)
    assert torch.equal(exits, want_exits)
    assert torch.equal(preds, want_preds)
    if method == "maxpred":
        assert len(exits.unique()) >= 2, "the test should exercise samples leaving at different exits"
    for i in range(0, 40, 3):  # one sample at a time: the runtime's batch-1 path
        one = {k: v[i : i + 1] for k, v in x.items()} if isinstance(x, dict) else x[i : i + 1]
        p1, e1 = adaptive_forward(model, sched, one)
        assert (int(e1), int(p1)) == (int(want_exits[i]), int(want_preds[i])), f"sample {i}"


def test_no_stage_runs_for_a_sample_that_left(net):
    """Count the samples each stage and each exit head sees: exactly those that had not left before it."""
    model, kind, val, labels, costs = net
    sched = make_scheduler("maxpred").fit(val, labels, costs, 0.5 * (costs[0] + costs[-1]))
    seen_heads = [0] * model.num_exits
    seen_stages = [0] * model.num_exits
    hooks = []
    for k in range(model.num_exits):
        hooks.append(model.heads[k].register_forward_hook(lambda m, a, out, k=k: seen_heads.__setitem__(k, seen_heads[k] + out.shape[0])))
        first = model.stages[k][0] if isinstance(model.stages[k], torch.nn.ModuleList) else model.stages[k]
        hooks.append(first.register_forward_pre_hook(lambda m, a, k=k: seen_stages.__setitem__(k, seen_stages[k] + _batch(a[0]))))
    try:
        _, exits = adaptive_forward(model, sched, make_inputs(kind, 40, 3))
    finally:
        for h in hooks:
            h.remove()
    reaching = [int((exits >= k).sum()) for k in range(model.num_exits)]
    assert seen_heads == reaching and seen_stages == reaching
    assert reaching[-1] < reaching[0], "some samples should leave before the last exit"


def _batch(x) -> int:
    while isinstance(x, list | tuple):
        x = x[0]
    return x.shape[0]


def test_the_oracle_cannot_run_as_inference(net):
    model, kind, val, labels, costs = net
    oracle = make_scheduler("oracle").fit(val, labels, costs, costs[1])
    with pytest.raises(ValueError, match="looks at the labels"):
        adaptive_forward(model, oracle, make_inputs(kind, 4, 3))


def test_run_split_covers_every_sample_in_order():
    from eenet.data import ImageSplit

    torch.manual_seed(0)
    model = build_model("small_cnn_3", 10, 1, width=4).eval()
    images = torch.randint(0, 256, (50, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    split = ImageSplit(images, torch.zeros(50, dtype=torch.long), (0.5,), (0.25,))
    val = cached_probs(model, split.inputs(torch.arange(50), torch.device("cpu")))
    sched = make_scheduler("maxpred").fit(val, torch.zeros(50, dtype=torch.long), [1.0, 2.0, 3.0], 2.0)
    preds, exits = run_split(model, sched, split, 7, torch.device("cpu"))
    assert torch.equal(exits, sched.assign(val))
    assert preds.shape == (50,)


def test_measure_policies_times_the_runtime_beside_the_full_model_and_the_cost_model():
    from eenet.measure.runtime import compare_to_simulation, measure_policies

    torch.manual_seed(0)
    model = build_model("small_cnn_3", 10, 1, width=4).eval()
    x = torch.randn(30, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    val = cached_probs(model, torch.randn(60, 1, 28, 28, generator=torch.Generator().manual_seed(5)))
    costs = [1.0, 2.0, 4.0]
    sched = make_scheduler("maxpred").fit(val, torch.zeros(60, dtype=torch.long), costs, 2.0)
    batches = [x[i : i + 4] for i in range(0, 30, 4)]
    res = measure_policies(model, {"maxpred": sched}, batches, torch.device("cpu"), warmup=0, repeats=3, chunk=3)
    want = sched.assign(cached_probs(model, x))
    assert torch.equal(res["maxpred"]["exits"], want)
    assert res["full"]["ms"] > 0 and res["maxpred"]["ms"] > 0 and "exits" not in res["full"]
    row = compare_to_simulation(res["maxpred"], res["full"], costs, model.num_exits)
    # simulated: the runtime's own exit histogram times the per-exit costs
    assert row["simulated_ms"] == pytest.approx(float(torch.tensor(costs)[want].mean()))
    assert row["measured_vs_simulated"] == pytest.approx(res["maxpred"]["ms"] / row["simulated_ms"])
    assert row["speedup_vs_full"] == pytest.approx(res["full"]["ms"] / res["maxpred"]["ms"])
    assert json.loads(row["exit_histogram"]) == torch.bincount(want, minlength=3).tolist()


def test_the_plain_network_runs_every_stage_and_only_the_last_head(net):
    from eenet.measure.costs import run_plain

    model, kind, *_ = net
    x = make_inputs(kind, 6, 3)
    called = []
    hooks = [h.register_forward_hook(lambda m, i, o, k=k: called.append(k)) for k, h in enumerate(model.heads)]
    try:
        with torch.inference_mode():
            plain = model.forward_plain(x)
            preds = run_plain(model, x)
    finally:
        for h in hooks:
            h.remove()
    assert called == [model.num_exits - 1] * 2  # the intermediate heads are never computed
    with torch.inference_mode():
        assert torch.equal(plain, model(x)[-1])  # and the last exit's logits are the all-heads forward's
    assert torch.equal(preds, plain.argmax(dim=1))


def test_the_plain_networks_flops_are_the_stages_and_the_last_head_only():
    """On a model whose exit heads are expensive (the paper's 3-conv heads), the plain network's count leaves them out."""
    from torch.utils.flop_counter import FlopCounterMode

    from eenet.measure.costs import count_flops, count_plain_flops

    model = build_model("small_cnn_3", 10, 1, width=8).eval()
    x = torch.randn(2, 1, 28, 28)
    head_flops = []
    with torch.inference_mode():
        state = model.begin(x)
        for k in range(model.num_exits):
            state = model.advance(k, state)
            counter = FlopCounterMode(display=False)
            with counter:
                model.head(k, state)
            head_flops.append(counter.get_total_flops() // 2)
    assert min(head_flops[:-1]) > 0
    per_exit, plain = count_flops(model, x), count_plain_flops(model, x)
    assert plain == per_exit[-1] - sum(head_flops[:-1])


def test_policies_that_decide_alike_share_one_timing():
    from eenet.measure.runtime import measure_policies

    torch.manual_seed(0)
    model = build_model("small_cnn_3", 10, 1, width=4).eval()
    val = cached_probs(model, torch.randn(60, 1, 28, 28, generator=torch.Generator().manual_seed(5)))
    labels = torch.zeros(60, dtype=torch.long)
    costs = [1.0, 2.0, 4.0]
    a = make_scheduler("maxpred").fit(val, labels, costs, 2.0)
    b = make_scheduler("maxpred").fit(val, labels, costs, 2.0)  # the same thresholds: the same decisions
    c = make_scheduler("entropy").fit(val, labels, costs, 2.0)  # another policy: timed on its own
    batches = [torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(i)) for i in range(6)]
    res = measure_policies(model, {"a": a, "b": b, "c": c}, batches, torch.device("cpu"), warmup=1, repeats=3, chunk=2)
    assert res["a"]["timing_shared_with"] == "" and res["c"]["timing_shared_with"] == ""
    assert res["b"]["timing_shared_with"] == "a" and res["b"]["ms"] == res["a"]["ms"]
    assert torch.equal(res["b"]["exits"], res["a"]["exits"])
    assert res["plain"]["ms"] > 0 and res["full"]["ms"] > 0


def test_the_sample_plan_fits_the_time_budget():
    from eenet.measure.runtime import plan_samples

    probs = torch.rand(3, 1000, 4).softmax(-1)
    labels = torch.zeros(1000, dtype=torch.long)
    costs = [1.0, 2.0, 4.0]
    pols = {f"m{b}": make_scheduler("maxpred").fit(probs, labels, costs, b) for b in (1.5, 2.5, 3.5)}
    cached = {n: s.assign(probs) for n, s in pols.items()}
    n_all, est_all = plan_samples(cached, pols, costs, 1000, None, 4, 2, 100)
    assert n_all == 1000
    # ms per sample: 2 baselines x 4 passes x 4 ms + each policy 4 passes at its simulated cost, x 2 batch sizes
    per_sample = 2 * (32 + sum(4 * float(torch.tensor(costs)[e].mean()) for e in cached.values())) / 1000
    assert est_all == pytest.approx(1000 * per_sample)
    n, est = plan_samples(cached, pols, costs, 1000, 0.3 * est_all, 4, 2, 100)
    assert n == int(0.3 * 1000) or n == int(0.3 * 1000) - 1
    assert est <= 0.3 * est_all + 1e-9
    assert plan_samples(cached, pols, costs, 1000, 1e-6, 4, 2, 100)[0] == 100  # never below min_samples
    assert plan_samples(cached, pols, costs, 50, 1e-6, 4, 2, 100)[0] == 50
    # a policy deciding as another of its class is timed once: the estimate drops
    twin = {**pols, "twin": pols["m1.5"]}
    _, est_twin = plan_samples({**cached, "twin": cached["m1.5"]}, twin, costs, 1000, None, 4, 2, 100)
    one_pass = 2 * float(torch.tensor(costs)[cached["m1.5"]].mean())  # the recording pass at both batch sizes
    assert est_twin == pytest.approx(est_all + one_pass)


def test_measure_runtime_logs_progress_and_bounds_the_samples(caplog):
    import logging

    from eenet.measure.runtime import measure_runtime
    from eenet.schedulers import exit_predictions

    torch.manual_seed(0)
    model = build_model("small_cnn_3", 10, 1, width=4).eval()
    x = torch.randn(80, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    probs = cached_probs(model, x)
    labels = probs[-1].argmax(1)
    costs = [0.05, 0.1, 0.2]  # ms: as a profile would give; only the plan reads them
    pols = {"maxpred/0.5": make_scheduler("maxpred").fit(probs, labels, costs, 0.1)}
    cfg = {"samples": None, "seconds": 1e-4, "min_samples": 24, "batch_size": 8, "warmup": 1, "repeats": 2}
    log = logging.getLogger("test-runtime")
    with caplog.at_level(logging.INFO, logger="test-runtime"):
        rows = measure_runtime(model, pols, lambda idx, dev: x[idx], probs, labels, costs, cfg, torch.device("cpu"), log)
    assert {(r["name"], r["batch_size"]) for r in rows} == {("maxpred/0.5", 1), ("maxpred/0.5", 8)}
    for r in rows:
        assert r["samples"] == 24 and r["exits_agree"] == 1.0 and r["preds_agree"] == 1.0
        assert r["speedup_vs_plain"] == pytest.approx(r["plain_ms"] / r["measured_ms"])
        idx = stratified_sample(labels, 24, 0)  # the timed samples: runtime.seed defaults to 0
        want = exit_predictions(probs[:, idx], pols["maxpred/0.5"].assign(probs)[idx])
        assert r["accuracy"] == pytest.approx(float((want == labels[idx]).float().mean()))
    text = caplog.text
    assert "on 24 test samples (of 80 asked" in text and "s left" in text and "distinct timings" in text
    assert "stratified by class, seed 0" in text


def test_stratified_sample_is_proportional_deterministic_and_covers_every_class():
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate([500, 240, 130, 70, 40, 15, 5])])  # sorted by class
    total = labels.numel()
    for n in (7, 10, 33, 100, 999):
        idx = stratified_sample(labels, n, seed=1)
        assert idx.dtype == torch.int64 and idx.numel() == n
        assert torch.equal(idx, idx.sort().values) and idx.unique().numel() == n  # sorted, no duplicates
        assert torch.equal(idx, stratified_sample(labels, n, seed=1))  # deterministic
        counts = torch.bincount(labels[idx], minlength=7)
        share = n * torch.bincount(labels).double() / total
        assert bool((counts > 0).all()), f"n={n}: every class is timed"
        if n >= 33:  # the classes below 1/n of the set need a seat; above that, proportional within one sample
            assert bool(((counts - share).abs() <= 1).all()), (n, counts.tolist(), share.tolist())
    assert not torch.equal(stratified_sample(labels, 100, 1), stratified_sample(labels, 100, 2))  # the seed draws
    # unsorted labels: the same allocation per class
    perm = torch.randperm(total, generator=torch.Generator().manual_seed(3))
    counts = torch.bincount(labels[perm][stratified_sample(labels[perm], 100, 0)], minlength=7)
    assert bool(((counts - 100 * torch.bincount(labels).double() / total).abs() <= 1).all())


def test_stratified_sample_takes_everything_when_n_covers_the_set():
    labels = torch.tensor([2, 0, 1, 1, 0, 2, 2])
    for n in (7, 8, 100):
        assert torch.equal(stratified_sample(labels, n, seed=5), torch.arange(7))
    assert stratified_sample(labels, 0, seed=5).numel() == 0
    one = stratified_sample(labels, 3, seed=5)
    assert sorted(labels[one].tolist()) == [0, 1, 2]


def test_measure_runtime_times_a_class_stratified_sample_and_quotes_the_whole_test_set(caplog):
    """A test set sorted by class whose first class is easy (leaves at exit 0): the first rows would time that class
    only; the runtime times every class in proportion and quotes the speed-up of the whole test set."""
    import logging

    from eenet.measure.runtime import log_runtime, measure_runtime
    from eenet.schedulers import exit_predictions, realised_cost

    torch.manual_seed(0)
    model = build_model("small_cnn_3", 10, 1, width=4).eval()
    x = torch.randn(90, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    costs = [0.05, 0.1, 0.2]
    probs = cached_probs(model, x)
    sched = make_scheduler("maxpred").fit(probs, probs[-1].argmax(1), costs, 0.1)
    order = sched.assign(probs).sort(stable=True).indices  # the samples that leave at exit 0 first
    x, probs = x[order], probs[:, order]
    exits = sched.assign(probs)
    easy = int((exits == 0).sum())
    assert 30 <= easy < 80, "the test needs an easy first class and a harder rest"
    # class 0: the easy samples (all leave at exit 0); classes 1 and 2: the rest, in order
    labels = torch.cat([torch.zeros(easy, dtype=torch.long), torch.arange(90 - easy) * 2 // (90 - easy) + 1])
    assert bool((exits[easy:] > 0).all())
    timed = []

    def inputs(idx, dev):
        timed.append(idx)
        return x[idx]

    cfg = {"samples": None, "seconds": 1e-4, "min_samples": 24, "batch_size": 8, "warmup": 1, "repeats": 2, "seed": 3}
    log = logging.getLogger("test-runtime-sample")
    rows = measure_runtime(model, {"m": sched}, inputs, probs, labels, costs, cfg, torch.device("cpu"), log)
    idx = stratified_sample(labels, 24, 3)
    assert [len(t) for t in timed] == [1] * 24 + [8] * 3  # batch 1's batches, then batch 8's
    assert torch.equal(torch.cat(timed[:24]), idx) and torch.equal(torch.cat(timed[24:]), idx)
    counts = torch.bincount(labels[idx], minlength=3)
    assert bool((counts > 0).all()) and bool(((counts - 24 * torch.bincount(labels) / 90).abs() <= 1).all())
    whole = realised_cost(exits, torch.tensor(costs))  # the cached exits of every test sample x the costs
    for r in rows:
        assert r["samples"] == 24 and r["exits_agree"] == 1.0 and r["preds_agree"] == 1.0
        hist = json.loads(r["exit_histogram"])
        assert hist == torch.bincount(exits[idx], minlength=3).tolist() and sum(hist[1:]) > 0  # not only the easy class
        assert r["simulated_ms"] == pytest.approx(realised_cost(exits[idx], torch.tensor(costs)))
        assert r["test_simulated_ms"] == pytest.approx(whole)
        assert r["speedup_vs_plain_test"] == pytest.approx(r["plain_ms"] / (r["measured_ms"] / r["simulated_ms"] * whole))
        assert r["speedup_vs_plain"] == pytest.approx(r["plain_ms"] / r["measured_ms"])
        want = exit_predictions(probs[:, idx], exits[idx])
        assert r["accuracy"] == pytest.approx(float((want == labels[idx]).float().mean()))
    with caplog.at_level(logging.INFO, logger="test-runtime-sample"):
        log_runtime(log, [{**r, "method": "maxpred", "budget_value": 0.5} for r in rows])
    assert f"x{rows[0]['speedup_vs_plain_test']:.2f} over the plain network on the whole test set" in caplog.text


def test_progress_is_logged_at_most_every_interval(caplog):
    import logging

    from eenet.measure.runtime import ProgressLog

    log = logging.getLogger("test-progress")
    with caplog.at_level(logging.INFO, logger="test-progress"):
        p = ProgressLog(log, "timing", every=1000.0)
        for i in range(1, 10):
            p(i, 10)
        assert caplog.records == []  # nothing before the interval has passed
        p(10, 10)  # the end is always logged
    assert len(caplog.records) == 1 and "timing: 10/10 (100 %)" in caplog.text and "~0 s left" in caplog.text


@pytest.mark.parametrize("method", ["ztw_ens+maxpred", "mie+patience", "pa+entropy"])
def test_runtime_with_a_combiner_decides_and_predicts_as_the_cached_evaluation(net, method):
    from eenet.schedulers import fit_policy as fit_combined

    model, kind, _, labels, costs = net
    with torch.inference_mode():
        val_logits = torch.stack([z.float() for z in model(make_inputs(kind, 48, 1))])
    sched = fit_combined(method, {}, F.softmax(val_logits, 2), val_logits, labels, costs, 0.5 * (costs[0] + costs[-1]))
    x = make_inputs(kind, 40, 3)
    with torch.inference_mode():
        logits = torch.stack([z.float() for z in model(x)])
    probs = sched.outputs({"probs": F.softmax(logits, 2), "logits": logits})
    want_exits = sched.assign(probs)
    want_preds = probs.argmax(dim=2).gather(0, want_exits.view(1, -1)).squeeze(0)
    preds, exits = adaptive_forward(model, sched, x)
    assert torch.equal(exits, want_exits)
    assert torch.equal(preds, want_preds)
    for i in range(0, 40, 5):
        one = {k: v[i : i + 1] for k, v in x.items()} if isinstance(x, dict) else x[i : i + 1]
        p1, e1 = adaptive_forward(model, sched, one)
        assert (int(e1), int(p1)) == (int(want_exits[i]), int(want_preds[i])), f"sample {i}"


def test_predict_gives_the_confidence_of_what_a_combined_policy_reads():
    """eenet predict's confidence is the max probability of the outputs the policy decides on (the combiner's)."""
    from eenet.data import dataset_spec
    from eenet.predict import Predictor
    from eenet.schedulers import fit_policy as fit_combined

    torch.manual_seed(0)
    model = build_model("small_cnn_3", 10, 1, width=4).eval()
    with torch.inference_mode():
        val_logits = torch.stack([z.float() for z in model(torch.randn(60, 1, 28, 28, generator=torch.Generator().manual_seed(5)))])
    labels = val_logits[-1].argmax(1)
    sched = fit_combined("mie+maxpred", {}, F.softmax(val_logits, 2), val_logits, labels, [1.0, 2.0, 3.0], 2.0)
    x = torch.randn(24, 1, 28, 28, generator=torch.Generator().manual_seed(6))
    with torch.inference_mode():
        logits = torch.stack([z.float() for z in model(x)])
    outs = sched.outputs({"probs": F.softmax(logits, 2), "logits": logits})
    exits = sched.assign(outs)
    want = outs.max(dim=2).values.gather(0, exits.view(1, -1)).squeeze(0)
    single = F.softmax(logits, 2).max(dim=2).values.gather(0, exits.view(1, -1)).squeeze(0)
    assert not torch.allclose(want, single)  # the combiner's confidence is not the single exit's
    predictor = Predictor(model, sched, dataset_spec("fashion_mnist"), {})
    batched = predictor(x)  # one batch: samples leave the batch at their exits
    one_by_one = [predictor(x[i : i + 1]) for i in range(24)]  # batch 1
    for exits_got, conf in ((batched.exits, batched.confidence),
                            (torch.cat([p.exits for p in one_by_one]), torch.cat([p.confidence for p in one_by_one]))):  # fmt: skip
        assert torch.equal(exits_got, exits)
        assert torch.allclose(conf, want, atol=1e-6)


def test_the_runtime_leaves_out_the_oracle_alone_and_after_a_combiner():
    """The oracle reads the labels, combined (`ztw_ens+oracle`) or not: measure_runtime times every other fitted policy."""
    probs, labels = make_probs(600, k=3)
    logits = probs.clamp_min(1e-9).log()
    costs = [1.0, 2.0, 3.0]
    fitted = []
    for method in ("maxpred", "oracle", "ztw_ens+maxpred", "ztw_ens+oracle"):
        (sched,) = fit_budgets(method, {}, probs, logits, labels, costs, [2.0])
        fitted.append({"budget_value": 0.5, "budget_ms": 2.0, **sched.to_json()})
    fitted.append({"method": "entropy", "budget_value": 0.4, "budget_ms": 1.2, "infeasible": True})
    policies, info = runnable_policies(fitted, probs, labels, costs)
    assert sorted(policies) == ["maxpred/0.5", "static_exit0", "static_exit1", "static_exit2", "ztw_ens+maxpred/0.5"]
    assert info["ztw_ens+maxpred/0.5"] == {"method": "ztw_ens+maxpred", "budget_value": 0.5, "budget_ms": 2.0}
