"""docs/results.md is written from the CSVs kept in benchmarks/out/ (python -m eenet.analysis.results_doc write): the
committed document is what they give, and a number changed in a CSV changes the document."""

from __future__ import annotations

import csv
import difflib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import REPO

from eenet.analysis.results_doc import main, render

OUT = REPO / "benchmarks" / "out"
WRITE = "python -m eenet.analysis.results_doc write"


def edit_csv(path: Path, change: Callable[[dict[str, str]], None], drop: tuple[str, ...] = ()) -> None:
    """Rewrite a CSV with ``change`` applied to every row and the columns ``drop`` left out."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        fields = [f for f in reader.fieldnames or [] if f not in drop]
        rows = list(reader)
    for row in rows:
        change(row)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """A copy of benchmarks/out to edit."""
    return Path(shutil.copytree(OUT, tmp_path / "out"))


def demo_section(text: str) -> str:
    """The demo's section of the document."""
    return text[text.index("## The demo") : text.index("## Training seeds")]


def survives_row(text: str, bench: str) -> str:
    """The row of the leading table ("What survives ...") for ``bench``."""
    return next(line for line in text.splitlines() if line.startswith(f"| `{bench}` |"))


def test_committed_results_md_is_what_the_kept_csvs_give():
    committed = (REPO / "docs" / "results.md").read_text()
    fresh = render(OUT)
    diff = "".join(list(difflib.unified_diff(committed.splitlines(True), fresh.splitlines(True), "docs/results.md", "render"))[:40])
    assert committed == fresh, f"docs/results.md is stale: run `{WRITE}`\n{diff}"


def test_a_changed_number_in_a_csv_changes_the_document(out):
    before = render(out)
    assert "**0.469 ms** (14.7 MFLOPs), 0.65 of the last exit's cost" in before  # the demo's plain network, cost.csv

    def faster_plain(row: dict[str, str]) -> None:
        row["plain_ms"] = "0.5123"

    edit_csv(out / "demo_cost.csv", faster_plain)
    after = render(out)
    assert "**0.512 ms** (14.7 MFLOPs), 0.72 of the last exit's cost" in after
    assert "**0.469 ms**" not in after and "0.65 of the last exit's cost" not in after
    assert "the plain network 0.512 ms (91.31 %)" in after  # the frontier's last point moved with it


def test_an_accuracy_changed_in_summary_csv_reaches_the_accuracy_table(out):
    row_before = "| 0.5 | 0.358 | 88.26 | 87.43 | `entropy` 85.50 | 93.71 | 0.384 | ×1.24 |"
    assert row_before in render(out)

    def entropy_better(row: dict[str, str]) -> None:
        if row["method"] == "entropy" and row["budget_value"] == "0.5":
            row["test_accuracy"] = "0.8611"

    edit_csv(out / "demo_summary.csv", entropy_better)
    after = render(out)
    assert "| 0.5 | 0.358 | 88.26 | 87.43 | `entropy` 86.11 | 93.71 | 0.384 | ×1.24 |" in after
    assert row_before not in after


def test_the_document_leads_with_what_survives_holm(out):
    text = render(out)
    lead = text.index("## What survives the multiple-comparison correction")
    assert lead < text.index("## The demo")
    assert survives_row(text, "fashion_mnist").startswith("| `fashion_mnist` | 1 | 18 | **none** | none |")

    def eenet_ahead(row: dict[str, str]) -> None:
        if row["method"] == "eenet" and row["budget_value"] == "0.45":
            row.update({"p_holm": "0.01", "ahead": "True"})

    edit_csv(out / "demo_stats.csv", eenet_ahead)
    after = render(out)
    assert survives_row(after, "fashion_mnist").startswith("| `fashion_mnist` | 1 | 18 | `eenet` (0.45) |")
    assert "ahead of MaxPred: `eenet` (0.45)." in after and "**no policy is ahead of MaxPred**" not in demo_section(after)


def test_the_lead_sets_each_run_against_its_plain_network_frontier_after_holm(out):
    text = render(out)
    part = text[text.index("### Against what a user would run instead") : text.index("## The demo")]
    row = next(line for line in part.splitlines() if line.startswith("| `fashion_mnist_6exit_light` |"))
    assert row.startswith("| `fashion_mnist_6exit_light` | the cuts and plain networks trained alone | 40 | **none** | 40 |")
    assert "| `fashion_mnist` | the cuts | 18 |" in part  # the demo trains none alone

    def ahead(row: dict[str, str]) -> None:  # the mean rows of one policy made ahead of the frontier after Holm
        if row["seed"] == "mean" and row["method"] == "eenet" and row["budget_value"] in ("0.6", "0.7"):
            row.update({"vs_frontier": "0.02", "vs_frontier_p_holm": "0.001"})

    edit_csv(out / "fashion_mnist_6exit_light_stats.csv", ahead)
    after = render(out)
    part = after[after.index("### Against what a user would run instead") : after.index("## The demo")]
    assert "| 40 | `eenet` (0.6, 0.7) | 38 | `eenet` at 0.6, +2.00 [" in part
    assert "Ahead of the frontier over seeds at 2 or more budgets: `eenet`; behind it: 38 of 40." in after


def test_a_stats_csv_without_the_correction_is_said_to_predate_it(out):
    assert "**no policy is ahead of MaxPred**" in demo_section(render(out))

    def one_above(row: dict[str, str]) -> None:  # an interval above 0: without p-values, what survives is then not known
        if row["method"] == "eenet" and row["budget_value"] == "0.45":
            row.update({"vs_maxpred": "0.001", "vs_maxpred_ci_low": "0.0005", "vs_maxpred_ci_high": "0.002"})

    edit_csv(out / "demo_stats.csv", one_above, drop=("p_value", "p_holm", "ahead"))
    after = render(out)
    assert "not known: the kept stats.csv predates the correction" in survives_row(after, "fashion_mnist")
    assert "**no policy is ahead of MaxPred**" not in demo_section(after)
    assert "What survives on `fashion_mnist` is not known: its kept stats.csv predates the correction" in after


def test_a_one_seed_stats_csv_without_the_correction_and_no_interval_above_0_has_no_survivor(out):
    """No interval above 0 on its own: no p-value below 0.05, so nothing after Holm either (one seed: the intervals are
    those the p-values come from); one interval above 0 and it is not known again."""

    def reach_0(row: dict[str, str]) -> None:
        if float(row.get("vs_maxpred_ci_low") or "nan") > 0:
            row["vs_maxpred_ci_low"] = "-0.0001"

    edit_csv(out / "demo_stats.csv", reach_0, drop=("p_value", "p_holm", "ahead"))
    after = render(out)
    assert "| **none** (the kept stats.csv predates the correction, but no interval lies above 0 even before it) |" in survives_row(
        after, "fashion_mnist"
    )
    assert "no policy can be ahead of MaxPred after it: none of its 18 intervals lies above 0" in after
    assert "What survives on" not in after  # no run's answer is unknown
    edit_csv(out / "demo_stats.csv", lambda row: row.update(vs_maxpred_ci_low="0.001") if row["method"] == "eenet" else None)
    assert "not known: the kept stats.csv predates the correction" in survives_row(render(out), "fashion_mnist")


def test_a_run_without_kept_csvs_is_said_to_be_missing(out):
    (out / "rotten_tomatoes_stats.csv").unlink()
    (out / "rotten_tomatoes_summary.csv").unlink()
    text = render(out)
    assert "No kept CSVs: `benchmarks/out/rotten_tomatoes_stats.csv`" in text
    assert "| `rotten_tomatoes` |" not in text


def test_check_fails_on_a_stale_document_and_names_the_write_command(out, tmp_path, capsys):
    doc = tmp_path / "results.md"
    doc.write_text(render(OUT).replace("88.26", "88.27"))
    assert main(["check", "--out", str(out), "--doc", str(doc)]) == 1
    assert WRITE in capsys.readouterr().err
    assert main(["write", "--out", str(out), "--doc", str(doc)]) == 0
    assert main(["check", "--out", str(out), "--doc", str(doc)]) == 0
    assert doc.read_text() == render(out)


def reliability_row(text: str, method: str, budget: str) -> str:
    """The row of the re-split study's cost table for ``method`` (plain, its guaranteed variant beside) at ``budget``."""
    section = text.split("## How often a budget breaks on unseen data")[1]
    return next(line for line in section.splitlines() if line.startswith(f"| `{method}` | {budget} |"))


def test_the_reliability_study_sets_guaranteed_beside_plain_the_ztw_compositions_included(out):
    text = render(out)
    study = text.split("## How often a budget breaks on unseen data")[1]
    assert "python benchmarks/reliability_study.py --run fashion_mnist_6exit_light/seed0" in study
    assert "python benchmarks/reliability_study.py --run fashion_mnist_6exit/seed0" in study
    six = study.split("### `fashion_mnist_6exit/seed0`")[1]  # the paper's exit heads: every combiner with MaxPred
    for m in ("maxpred", "ztw_ens+maxpred", "mie+maxpred", "pa+maxpred", "best+maxpred", "geo+maxpred"):
        assert "no variant" not in next(line for line in six.splitlines() if line.startswith(f"| `{m}` | 0.5 |"))
    for m in ("maxpred", "entropy", "ztw_ens+maxpred", "ztw_ens+entropy"):  # each with its guaranteed variant
        assert "no variant" not in reliability_row(text, m, "0.5")
    assert "no variant" in reliability_row(text, "ztw_ens+patience", "0.5")
    before = reliability_row(text, "ztw_ens+maxpred", "0.5")

    def guard_broken(row: dict[str, str]) -> None:
        if row["method"] == "ztw_ens+maxpred_guard" and row["budget_value"] == "0.5":
            row.update({"violation_rate": "0.4321", "violation_ci_low": "0.3", "violation_ci_high": "0.5"})

    edit_csv(out / "fashion_mnist_6exit_light_reliability.csv", guard_broken)
    after = reliability_row(render(out), "ztw_ens+maxpred", "0.5")
    assert after != before and "| 43.2 (30.0–50.0) |" in after


def test_a_reliability_study_not_kept_is_said_to_be_missing(out):
    for name in out.glob("*_reliability*.csv"):
        name.unlink()
    text = render(out)
    assert "`fashion_mnist_6exit_light`: no kept study (no benchmarks/out/fashion_mnist_6exit_light_reliability.csv)." in text
    assert "`fashion_mnist_6exit`: no kept study (no benchmarks/out/fashion_mnist_6exit_reliability.csv)." in text
    assert "reliability_study.py" not in text


def test_the_demos_runtime_reports_its_own_check_within_ten_percent(out):
    assert "0.99–1.02 over 18 policy-budget runs, 0 outside ±10 %." in render(out)

    def slow(row: dict[str, str]) -> None:
        if row["method"] == "eenet" and row["budget_value"] == "0.5" and row["batch_size"] == "1":
            row["measured_vs_same_run"] = "1.2"

    edit_csv(out / "demo_runtime.csv", slow)
    assert "0.99–1.20 over 18 policy-budget runs, 1 outside ±10 %." in render(out)


def test_a_policy_infeasible_at_some_budget_has_no_auc_range_over_seeds(out):
    """stats.csv writes nan for the seed range of an AUC the policy lacks (infeasible at a budget): no "(nan–nan)"."""
    text = render(out)
    row = next(line for line in text.splitlines() if line.startswith("| deferral | infeasible | infeasible |"))
    assert row.endswith("|  | 6.38 |") and "nan" not in text


def _compiled_rows(out: Path, prefix: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    with open(out / f"{prefix}_compiled.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(out / f"{prefix}_frontier.csv", newline="") as fh:
        return rows, list(csv.DictReader(fh))


def test_the_compiled_clock_is_recomputed_from_compiled_csv_and_the_frontier(out):
    """docs/results.md's compiled section: a policy against the compiled frontier (every cut at its compiled time, each
    network of a depth trained alone at its cut's) and the fastest policy within 0.5 points of the plain network."""
    prefix = "fashion_mnist_6exit_light"
    rows, networks = _compiled_rows(out, prefix)
    seed = "0"
    mine = [r for r in rows if r["bench"].endswith(f"seed{seed}")]
    cut_ms = {int(r["exit"]): float(r["compiled_ms"]) for r in mine if r["kind"] == "cut"}
    frontier = [(cut_ms[int(r["exit"])], float(r["test_accuracy"])) for r in mine if r["kind"] == "cut"]
    frontier += [(cut_ms[int(r["network"][5:]) - 1], float(r["test_accuracy"])) for r in networks
                 if r["seed"] == seed and r["kind"] == "depth"]  # fmt: skip
    r = next(r for r in mine if r["method"] == "maxpred" and r["budget_value"] == "0.5")
    best = max(a for t, a in frontier if t <= float(r["test_compiled_ms"]))
    want = f"{100 * (float(r['test_accuracy']) - best):+.2f}"
    text = render(out)
    section = text[text.index(f"### `{prefix}`") :]
    section = section[section.index("#### On the compiled clock") :]
    line = next(x for x in section.splitlines() if x.startswith("| `maxpred` | 0.5 |"))
    assert line.split(" | ")[-1].split(" / ")[0] == want, (line, want)  # seed 0 comes first
    # a plain network 50 points worse: every policy is within 0.5 points of it, and the fastest one is named
    last = str(max(cut_ms))

    def worse_plain(row: dict[str, str]) -> None:
        if row["bench"].endswith(f"seed{seed}") and row["kind"] == "cut" and row["exit"] == last:
            row["test_accuracy"] = "0.4"

    edit_csv(out / f"{prefix}_compiled.csv", worse_plain)
    fastest = max((r for r in mine if r["kind"] == "policy"), key=lambda r: float(r["speedup_vs_plain_test"]))
    after = render(out)
    assert f"seed {seed}: `{fastest['method']}` at {fastest['budget_value']}, ×{float(fastest['speedup_vs_plain_test']):.2f}" in after
