"""The adaptive runtime: samples really leave, and they leave where the cached-logit evaluation says."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from eenet.models import build_model
from eenet.runtime import adaptive_forward, run_split
from eenet.schedulers import make_scheduler

FAST_EENET = {"lr": 0.01, "epochs": 15, "patience": 10, "restarts": 2}

# architecture, builder arguments, input: ("image", C, H) or ("text", vocabulary)
ARCHS = [
    ("small_cnn_3", {"width": 4}, ("image", 1, 28)),
    ("resnet56_3", {"blocks": (1, 1, 1), "width": 4}, ("image", 3, 32)),
    ("densenet121_4", {"growth": 4, "blocks": (1, 1, 1, 1)}, ("image", 3, 32)),
    ("msdnet", {"blocks": 3, "base": 1, "step": 1, "channels": 4, "growth": 4}, ("image", 3, 224)),
    ("minilm_3", {"num_hidden_layers": 3, "exit_layers": [1, 2, 3]}, ("text", 30522)),
    ("bert_4", {"random_init": True, "num_hidden_layers": 4, "exit_layers": [1, 2, 3, 4]}, ("text", 30522)),
]


def make_inputs(kind: tuple, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    if kind[0] == "image":
        return torch.randn(n, kind[1], kind[2], kind[2], generator=g, dtype=torch.float64)
    length = 12
    ids = torch.randint(1000, kind[1], (n, length), generator=g)
    lengths = torch.randint(3, length + 1, (n,), generator=g)
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    return {"input_ids": ids * mask, "attention_mask": mask}


def cached_probs(model, x) -> torch.Tensor:
    """What cache_logits stores for these inputs: the softmax of every exit, ``[K, N, C]``."""
    with torch.inference_mode():
        return torch.stack([F.softmax(z.float(), dim=1) for z in model(x)])


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
    from eenet.runtime import compare_to_simulation, measure_policies

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
