"""The plain-network frontier: the network cut after each exit (that exit's head only) is timed with the exits and
predicts as that exit; each policy is compared with the most accurate cut at no more than its measured latency. With
networks trained alone (frontier.trained): a network of the first k stages built alone is the cut after exit k-1 (the
same parameters, the same modules run, the same FLOPs), the planning lists the networks of a config, all of them are
timed in one run (frontier.csv), and each policy meets the most accurate of the cuts and trained networks; on the tiny
pipeline the frontier is trained, timed and compared in stats.csv."""

from __future__ import annotations

import inspect
import re
import time

import pytest
import torch
import yaml
from helpers import REPO, band_split, clone_run, edit_config, snakemake

from eenet.analysis.bootstrap import bootstrap_comparisons, holm
from eenet.analysis.frontier import (
    frontier_columns,
    frontier_points,
    measured_latency,
    network_points,
    seed_frontier_columns,
    seed_latencies,
)
from eenet.measure.costs import profile_costs, run_cut, run_plain, run_to_exit
from eenet.measure.frontier import count_cut_flops, cut_parameters, measure_frontier
from eenet.models import MODELS, build_model
from eenet.pipeline.planning import (
    FRONTIER_ARCHS,
    FRONTIER_PATTERN,
    frontier_arch,
    frontier_files,
    frontier_kwargs,
    frontier_models,
    frontier_networks,
)
from eenet.pipeline.preflight import check_frontier_seeds
from eenet.pipeline.runs import expand_seed_runs


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
    assert [(p["network"], p["exit"], p["ms"], p["accuracy"]) for p in points] == [
        ("cut0", 0, 1.0, 0.4), ("cut1", 1, 2.0, 0.6), ("cut2", 2, 3.0, 0.9),
    ]  # fmt: skip

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
    assert (fast["frontier_network"], fast["frontier_ms"], fast["frontier_accuracy"]) == ("cut1", 2.0, 0.6)  # 2.25 ms: exit 1's cut
    assert fast["vs_frontier"] == pytest.approx(0.2) and fast["vs_frontier_ci_low"] <= 0.2 <= fast["vs_frontier_ci_high"]
    assert (slow["frontier_network"], slow["vs_frontier"]) == ("cut2", pytest.approx(-0.1))  # slower than the plain network: it wins
    assert none["measured_ms"] == 0.5 and "frontier_network" not in none and "vs_frontier" not in none  # faster than every cut
    assert "measured_ms" not in summary
    # one Holm family over the run's frontier comparisons
    pvals = bootstrap_comparisons(torch.stack([right.to(torch.int8) - p["correct"].to(torch.int8) for p in points[1:]]), 500, seed=0)["p"]
    assert [fast["vs_frontier_p_holm"], slow["vs_frontier_p_holm"]] == pytest.approx(holm(pvals.tolist()))


def test_over_seeds_each_seed_meets_its_own_competitor_and_the_interval_resamples_the_seeds():
    """Three seeds of one policy: its latency and its competitor differ by seed (cut1, cut2, none as fast); the mean row
    compares each seed with its own and takes the mean; with a seed that has no competitor the row stays empty."""
    n = 400
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (n,), generator=g)

    def probs_right(share: float) -> torch.Tensor:  # [N, 3]: right on the first share of the samples
        p = torch.full((n, 3), 0.1)
        right = torch.arange(n) < int(share * n)
        p[torch.arange(n), torch.where(right, labels, (labels + 1) % 3)] = 0.8
        return p

    def point(net: str, ms: float, share: float) -> dict:
        c = probs_right(share).argmax(dim=1) == labels
        return {"network": net, "ms": ms, "correct": c, "accuracy": float(c.double().mean())}

    points = [point("cut0", 1.0, 0.5), point("cut1", 2.0, 0.7), point("cut2", 3.0, 0.9)]

    def run(measured: float, share: float) -> tuple:
        runtime = [{"method": "p", "budget_value": "0.5", "batch_size": "1", "measured_ms": str(measured), "simulated_ms": "1",
                    "test_simulated_ms": "1"}]  # fmt: skip
        return {("p", 0.5): probs_right(share).argmax(dim=1) == labels}, runtime, points

    runs = [run(2.5, 0.8), run(3.2, 0.85), run(2.1, 0.75)]
    mean = [{"method": "p", "budget_value": 0.5}, {"method": "p", "budget_value": "all"}]
    seed_frontier_columns(mean, runs, reps=500, seed=1)
    row = mean[0]
    assert row["frontier_network"] == "cut1/cut2/cut1" and row["measured_ms"] == pytest.approx((2.5 + 3.2 + 2.1) / 3)
    assert row["vs_frontier"] == pytest.approx(((0.8 - 0.7) + (0.85 - 0.9) + (0.75 - 0.7)) / 3)
    assert row["frontier_accuracy"] == pytest.approx((0.7 + 0.9 + 0.7) / 3)
    # the seeds disagree in sign: the two-level interval is wider than the test-only one and reaches below 0
    assert row["vs_frontier_seed_ci_low"] < row["vs_frontier_ci_low"] and row["vs_frontier_seed_ci_low"] < 0
    assert row["vs_frontier_p_holm"] > 0.05 and "vs_frontier" not in mean[1]
    lonely = [{"method": "p", "budget_value": 0.5}]
    seed_frontier_columns(lonely, [run(2.5, 0.8), run(0.5, 0.8)], reps=200)  # seed 1 faster than every network
    assert "vs_frontier" not in lonely[0] and "frontier_network" not in lonely[0]
    # "p" an alias in seed 1's own stats.csv of "q", timed apart at 2.2 ms: the mean row takes the latency that seed's
    # row shows (q's, a faster competitor: cut1), as the study's per-seed rows do (carry_seed_columns)
    seed_rows = [[{"method": "p", "budget_value": "0.5", "measured_ms": "2.5", "aliases": ""}],
                 [{"method": "q", "budget_value": "0.5", "measured_ms": "2.2", "aliases": "p"}],
                 [{"method": "p", "budget_value": "0.5", "measured_ms": "2.1", "aliases": ""}]]  # fmt: skip
    aliased = [{"method": "p", "budget_value": 0.5}]
    seed_frontier_columns(aliased, runs, reps=200, seed=1, latencies=[seed_latencies(rows) for rows in seed_rows])
    assert aliased[0]["measured_ms"] == pytest.approx((2.5 + 2.2 + 2.1) / 3) and aliased[0]["frontier_network"] == "cut1/cut1/cut1"


# ---------------------------------------------------------------------------------------------------
# networks trained alone: the architecture of the cut, the same work


def cut_modules(model, k):
    """The modules the network cut after exit ``k`` runs: stages ``0..k`` and exit ``k``'s head."""
    return [*model.stages[: k + 1], model.heads[k]]


def executed(model, x, k):
    """(module type, its own parameters' shapes) of every leaf module run by :func:`run_cut` after exit ``k``, in order."""
    seen, hooks = [], []

    def record(mod, inputs, output):
        seen.append((type(mod).__name__, [tuple(p.shape) for p in mod.parameters(recurse=False)]))

    for m in model.modules():
        if not list(m.children()):
            hooks.append(m.register_forward_hook(record))
    try:
        run_cut(model, x, k)
    finally:
        for h in hooks:
            h.remove()
    return seen


CASES = [("small_cnn_3", {"width": 4}), ("resnet_6", {"width": 4}), ("resnet_6", {"width": 4, "head": "pool_linear"}),
         ("resnet_6", {"width": 4, "head": "conv_linear", "blocks": (1, 2, 1)})]  # fmt: skip


@pytest.mark.parametrize(("arch", "kwargs"), CASES, ids=[f"{a}-{'-'.join(map(str, k.values()))}" for a, k in CASES])
def test_a_network_of_depth_k_built_alone_is_the_multi_exit_network_cut_after_exit_k_minus_1(arch, kwargs):
    torch.manual_seed(0)
    multi = build_model(arch, 10, 1, **kwargs).eval()
    x = torch.randn(3, 1, 28, 28)
    for k in range(1, multi.num_exits + 1):
        alone = build_model(arch, 10, 1, **kwargs, depth=k).eval()
        assert alone.num_exits == 1
        cut = cut_modules(multi, k - 1)
        # the same parameters and buffers (shapes, in order): the architecture of the cut
        assert [tuple(p.shape) for p in alone.parameters()] == [tuple(p.shape) for m in cut for p in m.parameters()]
        assert [tuple(b.shape) for b in alone.buffers()] == [tuple(b.shape) for m in cut for b in m.buffers()]
        assert cut_parameters(alone, 0) == cut_parameters(multi, k - 1) == sum(p.numel() for p in alone.parameters())
        # the same modules run, in the same order, and the same FLOPs: its cost is the cut's, only the weights differ
        assert executed(alone, x, 0) == executed(multi, x, k - 1)
        assert count_cut_flops(alone, x, 0) == count_cut_flops(multi, x, k - 1)
        # with the cut's weights it computes the cut: exit k-1's logits
        cut_state = [t for m in cut for t in m.state_dict().values()]
        alone.load_state_dict(dict(zip(alone.state_dict(), cut_state, strict=True)))
        assert torch.allclose(alone(x)[0], multi(x)[k - 1], atol=1e-6)
    with pytest.raises(ValueError, match="depth must be between 1 and"):
        build_model(arch, 10, 1, **kwargs, depth=multi.num_exits + 1)


def test_a_wider_plain_network_runs_more_and_the_widths_change_nothing_but_the_channels():
    narrow, wide = (build_model("resnet_6", 10, 1, width=w, depth=6).eval() for w in (4, 8))
    x = torch.randn(2, 1, 28, 28)
    assert [t for t, _ in executed(narrow, x, 0)] == [t for t, _ in executed(wide, x, 0)]
    assert count_cut_flops(wide, x, 0) > 3 * count_cut_flops(narrow, x, 0)  # convolutions: ~4x the FLOPs at twice the width


def test_the_architectures_the_frontier_trains_alone_are_declared_as_their_builders_have_them():
    for arch, entry in FRONTIER_ARCHS.items():
        params = inspect.signature(MODELS[arch].builder).parameters
        assert "depth" in params and params["width"].default == entry["width"], arch
        assert frontier_arch(arch, {}) == (build_model(arch, 10, 1).num_exits, entry["width"])
    assert frontier_arch("resnet_6", {"blocks": [3, 3, 3], "width": 8}) == (build_model("resnet_6", 10, 1, blocks=(3, 3, 3)).num_exits, 8)


def frontier_block(**frontier):
    return {"arch": "resnet_6", "arch_kwargs": {"width": 8, "head": "pool_linear"}, "frontier": frontier}


def test_planning_lists_a_network_of_each_depth_and_width_with_the_benchmarks_own_keywords():
    nets = frontier_networks(frontier_block(trained=True, depths=None, widths=[0.5, 2.0]))
    assert list(nets) == ["depth1", "depth2", "depth3", "depth4", "depth5", "depth6", "width0.5", "width2.0"]
    assert nets["depth3"] == {"width": 8, "head": "pool_linear", "depth": 3}
    assert nets["width0.5"] == {"width": 4, "head": "pool_linear", "depth": 6} and nets["width2.0"]["width"] == 16
    assert all(re.fullmatch(FRONTIER_PATTERN, n) for n in nets)
    assert frontier_networks(frontier_block(trained=False, depths=None, widths=[0.5])) == {} == frontier_networks({"arch": "msdnet"})
    b = frontier_block(trained=True, depths=[2, 5], widths=[3])
    assert list(frontier_networks(b)) == ["depth2", "depth5", "width3.0"] and frontier_networks(b)["width3.0"]["width"] == 24
    assert frontier_models("x/seed1", b) == [f"results/x/seed1/frontier/{n}/model.pt" for n in ("depth2", "depth5", "width3.0")]
    assert frontier_files("x/seed1", b) == ["results/x/seed1/frontier.csv"] + [
        f"results/x/seed1/frontier/{n}/logits/test.safetensors" for n in ("depth2", "depth5", "width3.0")
    ]
    assert frontier_files("x", frontier_block(trained=False)) == []
    assert frontier_kwargs("x", b, "depth5") == {"width": 8, "head": "pool_linear", "depth": 5}
    with pytest.raises(ValueError, match=r"results/x/frontier/depth3: not a frontier network .* depth2, depth5, width3.0"):
        frontier_kwargs("x", b, "depth3")
    with pytest.raises(ValueError, match=r"frontier.depths \[7\]: resnet_6 has 6 exits"):
        frontier_networks(frontier_block(trained=True, depths=[1, 7], widths=[]))
    with pytest.raises(ValueError, match="frontier.widths 0.01: .* rounds to 0"):
        frontier_networks(frontier_block(trained=True, depths=None, widths=[0.01]))
    with pytest.raises(ValueError, match="frontier.trained: bert_4 cannot build its plain networks alone"):
        frontier_networks({"arch": "bert_4", "frontier": {"trained": True}})


def test_frontier_seeds_train_the_networks_alone_in_those_runs_only_and_name_seeds_the_benchmark_trains():
    b = frontier_block(trained=True, depths=[1, 2], widths=[], seeds=[0])
    b["train"] = {"seed": [0, 1, 2]}
    runs, _ = expand_seed_runs({"x": b})
    assert {r: list(frontier_networks(c)) for r, c in runs.items()} == {"x/seed0": ["depth1", "depth2"], "x/seed1": [], "x/seed2": []}
    assert frontier_files("x/seed1", runs["x/seed1"]) == [] and len(frontier_files("x/seed0", runs["x/seed0"])) == 3
    b["frontier"]["seeds"] = None  # every run
    assert all(len(frontier_networks(c)) == 2 for c in expand_seed_runs({"x": b})[0].values())
    check_frontier_seeds({"x": b})
    b["frontier"]["seeds"] = [0, 3]
    with pytest.raises(ValueError, match=r"benchmarks.x.frontier.seeds: \[3\] are not among its training seeds \[0, 1, 2\]"):
        check_frontier_seeds({"x": b})
    b["train"]["seed"] = 3  # one seed: its run is the benchmark itself
    b["frontier"]["seeds"] = [0]
    with pytest.raises(ValueError, match=r"frontier.seeds: \[0\] are not among its training seeds \[3\]"):
        check_frontier_seeds({"x": b})
    b["frontier"]["seeds"] = [3]
    check_frontier_seeds({"x": b})


def test_the_config_trains_the_frontier_of_the_many_exit_benchmarks_and_not_the_demos():
    benchmarks, _ = expand_seed_runs(yaml.safe_load((REPO / "config" / "config.yaml").read_text())["benchmarks"])
    trained = {name: list(frontier_networks(b)) for name, b in benchmarks.items() if frontier_networks(b)}
    every = ["depth1", "depth2", "depth3", "depth4", "depth5", "depth6", "width0.5"]  # no width 2: slower than any budget there
    assert trained == {f"fashion_mnist_6exit{v}/seed{s}": every for v in ("", "_light") for s in (0, 1, 2)}
    assert frontier_networks(benchmarks["fashion_mnist_6exit/seed1"])["depth2"] == {"width": 8, "depth": 2}
    assert frontier_networks(benchmarks["fashion_mnist_6exit_light/seed0"])["depth2"] == {"width": 8, "head": "pool_linear", "depth": 2}


def test_the_cuts_and_the_networks_trained_alone_are_timed_in_one_run_into_frontier_csv():
    torch.manual_seed(0)
    model = build_model("small_cnn_3", 3, 1, width=4)
    alone = {"depth2": build_model("small_cnn_3", 3, 1, width=4, depth=2), "width2.0": build_model("small_cnn_3", 3, 1, width=8, depth=3)}
    prof = {"batch_size": 4, "samples": 16, "warmup": 1, "repeats": 3, "threads": 1, "max_spread": 100.0}
    rows, spreads = measure_frontier(model, alone, band_split(24, pad=0, flip=False), prof, torch.device("cpu"), {"device": "cpu"})
    by = {r["network"]: r for r in rows}
    assert list(by) == ["cut0", "cut1", "cut2", "depth2", "width2.0"] and len(spreads) == 5
    assert [by[n]["kind"] for n in by] == ["cut", "cut", "cut", "depth", "width"] and by["cut1"]["exit"] == 1 and by["depth2"]["exit"] == ""
    assert all(r["ms"] > 0 and r["batch_size"] == 4 and r["samples"] == 16 and r["device"] == "cpu" for r in rows)
    # depth2 is the cut after exit 1: the same FLOPs and parameters (its time: the same work, in the same run)
    assert (by["depth2"]["flops"], by["depth2"]["parameters"]) == (by["cut1"]["flops"], by["cut1"]["parameters"])
    assert by["width2.0"]["flops"] > 3 * by["cut2"]["flops"]


def test_each_policy_meets_the_most_accurate_network_cut_or_trained_alone_at_no_more_than_its_latency():
    probs, labels, _ = frontier_case()  # cuts right on 4 / 6 / 9 of 10 samples
    table = [{"network": "cut0", "kind": "cut", "exit": "0", "ms": "1.0"}, {"network": "cut1", "kind": "cut", "exit": "1", "ms": "2.0"},
             {"network": "cut2", "kind": "cut", "exit": "2", "ms": "3.0"}, {"network": "depth2", "kind": "depth", "exit": "", "ms": "1.8"},
             {"network": "width0.5", "kind": "width", "exit": "", "ms": "1.5"},
             {"network": "width2.0", "kind": "width", "exit": "", "ms": "5.0"}]  # fmt: skip

    def alone(n_right):  # a network trained alone, right on the first n_right samples: its test softmax [1, N, 2]
        p = torch.zeros(1, 10, 2)
        p[0, :, 1] = 1.0
        p[0, :n_right] = torch.tensor([1.0, 0.0])
        return p

    trained = {"depth2": alone(7), "width0.5": alone(6), "width2.0": alone(10)}
    points = network_points(table, probs, labels, trained)
    got = [(p["network"], p["ms"], p["accuracy"]) for p in points]
    assert got == [("cut0", 1.0, 0.4), ("cut1", 2.0, 0.6), ("cut2", 3.0, 0.9), ("depth2", 1.8, 0.7), ("width0.5", 1.5, 0.6),
                   ("width2.0", 5.0, 1.0)]  # fmt: skip
    with pytest.raises(KeyError, match="width2.0"):
        network_points(table, probs, labels, {"depth2": alone(7), "width0.5": alone(6)})

    def timing(method, ms):  # measured on the whole test set's own samples (simulated = whole)
        return {"method": method, "budget_value": "0.5", "batch_size": "1", "measured_ms": str(ms), "simulated_ms": "1",
                "test_simulated_ms": "1"}  # fmt: skip

    latency = {"a": 1.2, "b": 1.6, "c": 2.5, "d": 3.5, "e": 6.0, "f": 0.9}
    right = {"a": 5, "b": 5, "c": 8, "d": 8, "e": 8, "f": 8}  # each policy is right on its first samples
    correct = {(m, 0.5): torch.arange(10) < n for m, n in right.items()}
    rows = [{"method": m, "budget_value": 0.5} for m in latency]
    frontier_columns(rows, correct, [timing(m, ms) for m, ms in latency.items()], points, reps=500, seed=0)
    best = {r["method"]: (r.get("frontier_network"), r.get("frontier_accuracy")) for r in rows}
    assert best == {
        "a": ("cut0", 0.4),  # 1.2 ms: only cut0 is as fast
        "b": ("width0.5", 0.6),  # 1.6 ms: width0.5 (0.6, 1.5 ms) beats cut0
        "c": ("depth2", 0.7),  # 2.5 ms: depth2 (0.7, trained alone) beats the cut of the same architecture (cut1, 0.6)
        "d": ("cut2", 0.9),  # 3.5 ms: the plain network
        "e": ("width2.0", 1.0),  # 6 ms: twice the width
        "f": (None, None),  # faster than every network
    }
    at = {r["method"]: r for r in rows}
    assert at["c"]["vs_frontier"] == pytest.approx(0.8 - 0.7) and at["e"]["vs_frontier"] == pytest.approx(-0.2)
    for r in rows[:-1]:  # the paired interval: the policy and its competitor right on nested samples, so every resample moves both alike
        assert r["vs_frontier_ci_low"] <= r["vs_frontier"] <= r["vs_frontier_ci_high"]
    # nested right answers: a resample's difference is (right_a - right_b) / 10 on the resampled samples; never its sign
    assert at["c"]["vs_frontier_ci_low"] >= 0 and at["e"]["vs_frontier_ci_high"] <= 0
    # the same (faster) choice on a tie in accuracy: width0.5 (1.5 ms) and cut1 (2 ms) are both right on 6
    rows = [{"method": "b", "budget_value": 0.5}]
    frontier_columns(rows, correct, [timing("b", 2.1)], [p for p in points if p["network"] != "depth2"], reps=200)
    assert rows[0]["frontier_network"] == "width0.5"


# ---------------------------------------------------------------------------------------------------
# the tiny pipeline with its frontier trained


def test_the_tiny_pipeline_trains_times_and_compares_its_plain_network_trained_alone(tiny_run, tmp_path):
    """frontier.trained on the finished tiny run: only the frontier's jobs and the statistics run (the first 2 stages
    with one head trained 1 epoch, cached, timed with the cuts), and stats.csv compares every policy with cuts and the
    network trained alone."""
    wd = clone_run(tiny_run, tmp_path / "wd")
    edit_config(wd, lambda b: b.update(frontier={"trained": True, "depths": [2], "widths": []}))
    t0 = time.perf_counter()
    proc = snakemake(wd, "results/tiny/stats.csv")
    seconds = time.perf_counter() - t0
    ran = re.findall(r"^(?:local)?rule (\w+):", proc.stdout + proc.stderr, re.M)
    assert sorted(ran) == ["compute_stats", "frontier_cost", "frontier_logits", "train_frontier"], ran
    from eenet.io import read_csv
    from eenet.models import load_model

    res = wd / "results" / "tiny"
    depth2, meta = load_model(str(res / "frontier" / "depth2" / "model.pt"))
    assert depth2.num_exits == 1 and meta["arch_kwargs"] == {"width": 4, "depth": 2}
    table = {r["network"]: r for r in read_csv(res / "frontier.csv")}
    assert list(table) == ["cut0", "cut1", "cut2", "depth2"] and table["depth2"]["kind"] == "depth"
    assert (table["depth2"]["flops"], table["depth2"]["parameters"]) == (table["cut1"]["flops"], table["cut1"]["parameters"])
    stats = read_csv(res / "stats.csv")
    compared = [r for r in stats if r["vs_frontier"]]
    assert compared and "frontier_exit" not in stats[0]
    assert {r["frontier_network"] for r in compared} <= set(table)
    from eenet.analysis.frontier import clock_ratio

    drift = clock_ratio(read_csv(res / "cost.csv"), list(table.values()))  # frontier.csv put on cost.csv's clock
    for r in compared:  # the competitor: a network of frontier.csv no slower than the policy
        assert float(r["frontier_ms"]) == pytest.approx(float(table[r["frontier_network"]]["ms"]) * drift)
        assert float(r["frontier_ms"]) <= float(r["measured_ms"])
        assert float(r["vs_frontier_ci_low"]) <= float(r["vs_frontier"]) <= float(r["vs_frontier_ci_high"])
    print(f"the frontier's jobs took {seconds:.0f} s")


def test_curve_pdf_draws_the_networks_trained_alone_and_nothing_more_without_them(tmp_path, monkeypatch):
    import eenet.analysis.plotting as plotting

    figures = []
    monkeypatch.setattr(plotting, "save_figure", lambda fig, paths: figures.append(fig))
    rows = [{"method": "maxpred", "budget_value": 0.5, "test_cost_ms": 1.0, "test_accuracy": 0.8}]
    cuts = [(1.0, 0.5), (2.0, 0.7)]
    trained = [("depth2", 2.1, 0.75), ("depth1", 1.1, 0.55), ("width0.5", 1.2, 0.6), ("width2.0", 4.0, 0.8)]
    plotting.plot_curve(rows, "t", "c", ["x.png"], None, "simulated", None, None, cuts, trained)
    plotting.plot_curve(rows, "t", "c", ["x.png"], None, "simulated", None, None, cuts)
    with_them, without = (f.axes[0] for f in figures)
    depth = [ln for ln in with_them.get_lines() if "trained alone" in ln.get_label()]
    assert len(depth) == 1 and list(depth[0].get_xdata()) == [1.1, 2.1] and list(depth[0].get_ydata()) == pytest.approx([55.0, 75.0])
    widths = [c for c in with_them.collections if "another width" in c.get_label()]
    assert len(widths) == 1 and widths[0].get_offsets().ravel().tolist() == pytest.approx([1.2, 60.0, 4.0, 80.0])
    assert [t.get_text() for t in with_them.texts if t.get_text().startswith("x")] == ["x0.5", "x2"]
    assert not [a for a in [*without.get_lines(), *without.collections] if "trained alone" in a.get_label() or "width" in a.get_label()]
    assert len(without.get_lines()) == len(with_them.get_lines()) - 1


def test_clock_columns_compare_with_maxpred_interpolated_at_the_policys_measured_latency():
    from eenet.analysis.frontier import clock_columns

    g = torch.Generator().manual_seed(0)
    n = 4000
    c1, c2 = torch.rand(n, generator=g) < 0.6, torch.rand(n, generator=g) < 0.8  # MaxPred at budgets 0.4 and 0.6
    cx, cy = torch.rand(n, generator=g) < 0.75, torch.rand(n, generator=g) < 0.9
    correct = {("maxpred", "0.4"): c1, ("maxpred", "0.6"): c2, ("x", "0.5"): cx, ("y", "0.5"): cy}

    def run(method, value, b, ms):
        return {"method": method, "budget_value": value, "batch_size": str(b), "measured_ms": str(ms), "simulated_ms": "1",
                "test_simulated_ms": ""}  # fmt: skip

    runtime = [run("maxpred", "0.4", 1, 1.0), run("maxpred", "0.6", 1, 2.0), run("x", "0.5", 1, 1.5), run("y", "0.5", 1, 2.5),
               run("maxpred", "0.4", 8, 0.5), run("maxpred", "0.6", 8, 1.0), run("x", "0.5", 8, 0.6), run("y", "0.5", 8, 0.9)]  # fmt: skip
    rows = [{"method": m, "budget_value": v} for m, v in correct] + [{"method": "x", "budget_value": "all"}]
    clock_columns(rows, correct, runtime, reps=500)
    by = {(r["method"], r["budget_value"]): r for r in rows}
    mean = lambda c: c.double().mean().item()  # noqa: E731
    x, y = by[("x", "0.5")], by[("y", "0.5")]
    assert x["vs_maxpred_measured"] == pytest.approx(mean(cx) - (0.5 * mean(c1) + 0.5 * mean(c2)))  # halfway at batch 1
    assert x["vs_maxpred_measured_batched"] == pytest.approx(mean(cx) - (0.8 * mean(c1) + 0.2 * mean(c2)))  # a fifth at 8
    assert x["vs_maxpred_measured_ci_low"] < x["vs_maxpred_measured"] < x["vs_maxpred_measured_ci_high"]
    assert x["batch_size_batched"] == 8 and x["measured_ms_batched"] == 0.6
    assert "vs_maxpred_measured" not in y  # slower than MaxPred's slowest: no extrapolation
    assert y["vs_maxpred_measured_batched"] == pytest.approx(mean(cy) - (0.2 * mean(c1) + 0.8 * mean(c2)))
    assert by[("maxpred", "0.4")]["vs_maxpred_measured"] == 0.0  # MaxPred against itself
    assert "vs_maxpred_measured" not in by[("x", "all")]


def test_a_policy_and_the_frontier_are_compared_on_cost_csvs_clock(tmp_path):
    """The runtime ran when the machine was twice as fast as when cost.csv was timed: the policy's latency is its
    same-run ratio times its cost-model prediction (cost.csv's clock), not the raw measured ms; frontier.csv, timed
    at yet another speed, is scaled onto cost.csv's clock through the cuts both time."""
    from eenet.analysis.frontier import clock_ratio, measured_latency

    row = {"method": "m", "budget_value": "0.5", "batch_size": "1", "measured_ms": "0.25", "simulated_ms": "0.5",
           "test_simulated_ms": "0.6", "measured_vs_same_run": "1.05"}  # fmt: skip
    assert measured_latency([row], "m", "0.5") == pytest.approx(1.05 * 0.6)  # not 0.25 / 0.5 * 0.6 = 0.3
    assert measured_latency([{**row, "measured_vs_same_run": ""}], "m", "0.5") == pytest.approx(0.3)  # no check: as before
    cost = [{"exit": "0", "cut_ms": "0.2", "plain_ms": ""}, {"exit": "1", "cut_ms": "0.5", "plain_ms": "0.4"}]
    frontier = [{"network": "cut0", "kind": "cut", "ms": "0.1"}, {"network": "cut1", "kind": "cut", "ms": "0.2"},
                {"network": "depth1", "kind": "trained", "ms": "0.05"}]  # fmt: skip
    assert clock_ratio(cost, frontier) == pytest.approx(2.0)  # cut0 0.2/0.1, cut1 (the plain network) 0.4/0.2
    assert clock_ratio(cost, frontier[2:]) == 1.0  # no shared cut: left as is
    # read_frontier puts every network of frontier.csv, trained ones included, on cost.csv's clock
    from eenet.analysis.frontier import read_frontier
    from eenet.io import write_csv
    from eenet.records import write_logits_cache

    probs = torch.softmax(torch.randn(2, 30, 3, generator=torch.Generator().manual_seed(0)), dim=2)
    labels = torch.randint(0, 3, (30,), generator=torch.Generator().manual_seed(1))
    table = tmp_path / "frontier.csv"
    write_csv(table, [{**r, "exit": r["network"][-1] if r["kind"] == "cut" else ""} for r in frontier], ["network", "kind", "exit", "ms"])
    cache = tmp_path / "frontier" / "depth1" / "logits" / "test.safetensors"
    cache.parent.mkdir(parents=True)
    header = {"bench": "b", "split": "test", "dataset": "d", "model_sha256": "0", "num_exits": 1, "num_classes": 3, "device": "cpu"}
    write_logits_cache(cache, {"probs": probs[1:], "logits": probs[1:].log(), "labels": labels}, header)
    points = {pt["network"]: pt["ms"] for pt in read_frontier(cost, [table, cache], probs, labels)}
    assert points == pytest.approx({"cut0": 0.2, "cut1": 0.4, "depth1": 0.1})


def test_the_results_documents_clock_section_reads_each_seeds_comparisons():
    from eenet.analysis.results_runtime import clock_section
    from eenet.analysis.results_sections import Run

    def st(seed, method, budget, acc, vf, lo, hi):
        return {"seed": seed, "method": method, "budget_value": budget, "test_accuracy": acc, "vs_frontier": vf,
                "vs_frontier_ci_low": lo, "vs_frontier_ci_high": hi}  # fmt: skip

    stats = [st(s, "a", b, "0.89", "0.02", "0.01", "0.03") for s in ("0", "1") for b in ("0.5", "0.6")]
    stats += [st("0", "b", "0.5", "0.70", "-0.02", "-0.03", "-0.01"), st("1", "b", "0.5", "0.70", "0.01", "-0.01", "0.02")]
    stats += [{**r, "seed": "mean"} for r in stats[:2]]
    summary = [{"seed": s, "method": f"static_exit{k}", "test_accuracy": "0.892"} for s in ("0", "1") for k in (0, 1)]

    def rt(seed, method, budget, ratio, speed):
        return {"bench": f"x/seed{seed}", "method": method, "budget_value": budget, "batch_size": "1",
                "measured_vs_same_run": ratio, "speedup_vs_plain_test": speed}  # fmt: skip

    runtime = [rt("0", "a", "0.5", "0.95", "1.6"), rt("0", "a", "0.6", "1.12", "1.3"), rt("1", "a", "0.5", "1.0", "1.4"),
               rt("1", "b", "0.5", "1.0", "2.0")]  # fmt: skip
    text = "\n".join(clock_section(Run("x", stats=stats, summary=summary, runtime=runtime)))
    assert "0.95–1.12 over 4 policy-budget runs of 2 seeds, 1 outside ±10 %" in text
    assert "| `a` | +2.00* / +2.00* | +2.00* / +2.00* |" in text and "| `b` | -2.00- / +1.00 | · / · |" in text
    assert "Above the frontier at 2 or more budgets in every seed: `a`." in text
    # within 0.5 points of the plain network (89.2 %): `a` only (b is 19 points below); seed 0's fastest is at 0.5
    assert "seed 0: `a` at 0.5, -0.20 points, ×1.60; seed 1: `a` at 0.5, -0.20 points, ×1.40" in text
    assert "Over the seeds" not in text  # mean rows without the two-level columns (written before them): no such table
    over = {"vs_frontier_seed_ci_low": "0.004", "vs_frontier_seed_ci_high": "0.036", "frontier_network": "cut1/depth2"}
    stats[-2:] = [{**stats[-2], **over, "vs_frontier_p_holm": "0.01"}, {**stats[-1], **over, "vs_frontier_p_holm": "0.2"}]
    stats.append({**st("mean", "b", "0.5", "0.7", "-0.005", "-0.01", "0.0"), **over, "vs_frontier_seed_ci_low": "-0.04",
                  "vs_frontier_seed_ci_high": "0.03", "vs_frontier_p_holm": "0.6"})  # fmt: skip
    text = "\n".join(clock_section(Run("x", stats=stats, summary=summary, runtime=runtime)))
    assert "Holm-adjusted p < 0.05 over its 3 comparisons" in text and "The competitors met: `cut1`, `depth2`." in text
    assert "| `a` | +2.00 [+0.40, +3.60]* | +2.00 [+0.40, +3.60] |" in text  # the second not ahead after Holm
    assert "| `b` | -0.50 [-4.00, +3.00] | · |" in text
    assert "Ahead of the frontier over seeds at 2 or more budgets: none; behind it: 0 of 3." in text


def test_the_results_document_lists_the_frontiers_networks_and_the_plain_network_trained_alone():
    from eenet.analysis.results_runtime import frontier_networks
    from eenet.analysis.results_sections import Run

    def net(seed, name, kind, ms, acc):
        return {"seed": seed, "network": name, "kind": kind, "ms": ms, "flops": "1", "parameters": "1", "test_accuracy": acc}

    rows = [net(s, "cut0", "cut", "0.2", "0.40") for s in "01"] + [net(s, "cut1", "cut", "0.5", "0.85") for s in "01"]
    rows += [net("0", "depth2", "depth", "0.45", "0.90"), net("1", "depth2", "depth", "0.47", "0.92")]
    stats = [{"seed": "mean", "method": "maxpred", "budget_value": "0.5", "test_accuracy": "0.8"},
             {"seed": "mean", "method": "oracle", "budget_value": "0.5", "test_accuracy": "0.99"},
             {"seed": "0", "method": "maxpred", "budget_value": "0.5", "test_accuracy": "0.95"},
             {"seed": "1", "method": "maxpred", "budget_value": "0.5", "test_accuracy": "0.6"}]  # fmt: skip
    text = "\n".join(frontier_networks(Run("x", stats=stats), rows))
    assert "| `depth2` | depth | 0.460 | 91.00 (90.00–92.00) |" in text and "| `cut0` | cut | 0.200 | 40.00 (40.00–40.00) |" in text
    # the bound (oracle) left out, the mean rows speak for the seeds
    assert "(`depth2`, 0.460 ms) reaches 91.00 %, the multi-exit network's last exit alone (`cut1`, 0.500 ms) 85.00 %" in text
    assert "(`maxpred` at 0.5) 80.00 %, -11.00 points from the plain network trained alone" in text
    assert "trained alone (test accuracy, %, mean over seeds): exit 1 85.00 vs 91.00." in text  # exit 0 has no depth1 here
    assert frontier_networks(Run("x"), []) == []
