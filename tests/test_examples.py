"""The visual analysis: exit shares and accuracies, the examples shown per exit, and the rule that writes them."""

from __future__ import annotations

import csv

import pytest
import torch
from helpers import clone_run, make_probs, snakemake

from eenet.analysis.exits import examples_caption, exit_table, pick_examples, plot_examples, raw_samples, shown_policy
from eenet.schedulers import MaxPredScheduler, StaticScheduler, accuracy, exit_predictions


def _fitted(probs, labels):
    costs = [1.0, 2.0, 3.0]
    return [
        StaticScheduler(exit_index=1).fit(probs, labels, costs, 2.0).to_json() | {"budget_value": 2.0, "budget_unit": "ms"},
        MaxPredScheduler().fit(probs, labels, costs, 1.8).to_json() | {"budget_value": 1.8, "budget_unit": "ms"},
    ]


def test_exit_shares_sum_to_one_and_their_accuracies_give_the_policy_accuracy(val_data, test_data):
    fitted = _fitted(*val_data)
    probs, labels = test_data
    rows = exit_table("b", probs, labels, fitted)
    static = [r for r in rows if r["method"] == "static"]
    assert [r["share"] for r in static] == [0.0, 1.0, 0.0]
    assert static[0]["accuracy"] == "" and static[1]["accuracy"] == pytest.approx((probs[1].argmax(1) == labels).float().mean().item())
    mp = [r for r in rows if r["method"] == "maxpred"]
    assert sum(r["share"] for r in mp) == pytest.approx(1.0) and all(0 < r["share"] < 1 for r in mp)
    from eenet.schedulers import scheduler_from_json

    exits = scheduler_from_json(fitted[1]).assign(probs, labels)
    weighted = sum(r["share"] * r["accuracy"] for r in mp if r["samples"])
    assert weighted == pytest.approx(accuracy(probs, labels, exits))
    # the first exit takes the samples it is confident about: its confidence on them exceeds that on the rest
    assert mp[0]["mean_confidence"] > probs[0].max(dim=1).values[exits != 0].mean().item()


def test_exits_csv_gives_a_combiners_per_exit_accuracy_beside_the_single_exits():
    from eenet.schedulers import fit_policy as fit_combined

    g = torch.Generator().manual_seed(5)
    labels = torch.randint(0, 4, (2000,), generator=g)
    logits = torch.stack([1.2 * torch.nn.functional.one_hot(labels, 4) + torch.randn(2000, 4, generator=g) for _ in range(3)])
    probs = torch.softmax(logits, 2)
    val, test = slice(0, 1000), slice(1000, 2000)
    fitted = [
        fit_combined(m, {}, probs[:, val], logits[:, val], labels[val], [1.0, 2.0, 3.0], 2.0).to_json() | {"budget_value": 2.0}
        for m in ("maxpred", "ztw_ens+maxpred")
    ]
    with pytest.raises(ValueError, match="--forcerun cache_logits"):
        exit_table("b", probs[:, test], labels[test], fitted)  # a cache without logits cannot evaluate ztw_ens+maxpred
    rows = exit_table("b", probs[:, test], labels[test], fitted, logits[:, test])
    single = (probs[:, test].argmax(2) == labels[test]).double().mean(1).tolist()
    plain = [r for r in rows if r["method"] == "maxpred"]
    ztw = [r for r in rows if r["method"] == "ztw_ens+maxpred"]
    assert [r["single_exit_accuracy"] for r in ztw] == single == [r["exit_accuracy"] for r in plain]
    # independent views: the ensemble at the last exit beats the single last exit
    assert ztw[2]["exit_accuracy"] > single[2] + 0.02 and ztw[0]["exit_accuracy"] == pytest.approx(single[0], abs=0.02)


def test_examples_are_the_first_samples_leaving_at_each_exit():
    probs, labels = make_probs(n=300, k=3, seed=4)
    fitted = _fitted(probs, labels)[1]
    rows = pick_examples(fitted, probs, labels, per_exit=4)
    from eenet.schedulers import scheduler_from_json

    exits = scheduler_from_json(fitted).assign(probs, labels)
    preds = exit_predictions(probs, exits)
    for k in range(3):
        mine = [r["index"] for r in rows if r["exit"] == k]
        assert mine == torch.nonzero(exits == k).flatten()[:4].tolist()
    assert all(r["prediction"] == int(preds[r["index"]]) and r["label"] == int(labels[r["index"]]) for r in rows)


def test_text_examples_are_the_test_sentences(tmp_path, monkeypatch):
    import eenet.analysis.plotting as plotting

    figures = []
    save = plotting.save_figure
    monkeypatch.setattr(plotting, "save_figure", lambda fig, paths: figures.append(fig) or save(fig, paths))
    (tmp_path / "test.csv").write_text('label,text\n0,a dull film\n1,a joyful ride\n0,"flat, long"\n')
    assert raw_samples("rotten_tomatoes", tmp_path, [2, 0]) == ["flat, long", "a dull film"]
    rows = [{"exit": 0, "label": 0, "prediction": 0, "confidence": 0.9}, {"exit": 1, "label": 0, "prediction": 1, "confidence": 0.6}]
    out = tmp_path / "ex.pdf"
    plot_examples(rows, ["flat, long", "a dull film"], ["negative", "positive"], "t", "c", [str(out)])
    assert out.read_bytes()[:4] == b"%PDF"
    # each sentence under its exit with its label and prediction; a wrong prediction in red
    texts = [(t.get_text(), t.get_color()) for t in figures[0].texts]
    lines = [(text, colour) for text, colour in texts if text.startswith(("exit ", "["))]
    assert lines == [
        ("exit 0", "black"),
        ("[negative -> negative, p=0.90] flat, long", "black"),
        ("exit 1", "black"),
        ("[negative -> positive, p=0.60] a dull film", "tab:red"),
    ]


@pytest.fixture(scope="module")
def analysed(tiny_run, tmp_path_factory):
    wd = clone_run(tiny_run, tmp_path_factory.mktemp("examples"))
    snakemake(wd, "results/tiny/examples.pdf")
    return wd


def test_exit_analysis_rule_writes_shares_examples_and_the_figure(analysed):
    res = analysed / "results" / "tiny"
    with (res / "exits.csv").open() as f:
        exits = list(csv.DictReader(f))
    with (res / "examples.csv").open() as f:
        examples = list(csv.DictReader(f))
    keys = {(r["method"], r["budget_value"]) for r in exits}
    assert keys == {(m, b) for m in ("eenet", "maxpred", "entropy", "oracle") for b in ("0.75", "0.9")}
    for key in keys:
        assert sum(float(r["share"]) for r in exits if (r["method"], r["budget_value"]) == key) == pytest.approx(1.0)
    # the defaults: EENet at the middle budget, at most 8 per exit
    assert {(r["method"], r["budget_value"]) for r in examples} == {("eenet", "0.9")}
    assert all(sum(r["exit"] == str(k) for r in examples) <= 8 for k in range(3))
    assert (res / "examples.pdf").read_bytes()[:4] == b"%PDF"


def test_an_example_policy_that_is_not_fitted_stops_before_any_job(analysed):
    cfg = analysed / "config" / "config.yaml"
    original = cfg.read_text()
    methods = "methods: [eenet, maxpred, entropy, oracle]"
    cfg.write_text(original.replace(methods, methods + "\n    examples: {method: patience}"))
    try:
        proc = snakemake(analysed, "-n", "results/tiny/examples.pdf", check=False)
    finally:
        cfg.write_text(original)
    assert proc.returncode != 0
    assert "examples.method 'patience' is not among the benchmark's methods" in proc.stdout + proc.stderr


def test_an_infeasible_example_policy_is_replaced_by_the_nearest_feasible_fit_with_a_notice():
    def fit(method, budget, infeasible=False):
        return {"method": method, "budget_value": budget, "budget_unit": "fraction", **({"infeasible": True} if infeasible else {})}

    fitted = [fit("eenet", "0.6", True), fit("eenet", "0.75"), fit("eenet", "0.9", True), fit("maxpred", "0.9")]
    assert shown_policy(fitted, "maxpred", "0.9", "b") == (fitted[3], None)
    shown, notice = shown_policy(fitted, "eenet", "0.9", "b")
    assert shown is fitted[1]  # the same method at the nearest feasible budget before another method
    assert "'eenet' at budget 0.9 has no feasible fit" in notice and "shows eenet at budget 0.75" in notice
    shown, notice = shown_policy(fitted[:1] + fitted[2:], "eenet", "0.9", "b")
    assert shown is fitted[3] and "shows maxpred at budget 0.9" in notice  # no eenet fit is feasible: another method
    caption = examples_caption([], shown, 8, notice)
    assert caption.startswith(notice)
    with pytest.raises(ValueError, match="no policy has a feasible fit"):
        shown_policy([fit("eenet", "0.9", True)], "eenet", "0.9", "b")
