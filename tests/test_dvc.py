"""DVC records what Snakemake made: run -> record -> push; fresh clone -> pull -> nothing to do; lineage.

Runs in a temporary git + DVC repository with a local remote and the tiny config.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import REPO, TARGET, clone_run, copy_workflow, edit_config, planned_jobs

# the tests of a recorded run skip without the packaged Fashion-MNIST too (their tiny_run fixture says so)
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def eenet_dvc(action: str, cwd: Path) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "eenet.pipeline.dvc", action, TARGET], cwd)


def lineage(cwd: Path, check: bool = True) -> tuple[int, dict]:
    proc = run([sys.executable, "-m", "eenet.pipeline.lineage", "--json", "results/tiny/curve.pdf"], cwd, check=check)
    return proc.returncode, json.loads(proc.stdout)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def recorded(tiny_run, tmp_path_factory) -> tuple[Path, Path]:
    """(repository with a recorded, pushed tiny run, its DVC remote): the session's tiny run, put under git + DVC."""
    repo, remote = tmp_path_factory.mktemp("repo"), tmp_path_factory.mktemp("remote")
    clone_run(tiny_run, repo)
    shutil.copy2(REPO / ".gitignore", repo / ".gitignore")
    run(["git", "init", "-q"], repo)
    run(["git", "config", "user.email", "test@example.invalid"], repo)
    run(["git", "config", "user.name", "test"], repo)
    run([sys.executable, "-m", "dvc", "init", "-q"], repo)
    run([sys.executable, "-m", "dvc", "remote", "add", "-d", "local", str(remote)], repo)
    run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "the workflow"], repo)  # the artifacts are ignored by git: DVC's to track
    assert planned_jobs(repo) == {}
    eenet_dvc("record", repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "recorded run"], repo)
    eenet_dvc("push", repo)
    return repo, remote


def test_git_holds_only_dvc_files_not_artifacts(recorded):
    repo, _ = recorded
    tracked = run(["git", "ls-files"], repo).stdout.split()
    assert {"dvc.yaml", "dvc.lock", "dvc-params.yaml", "dvc-record.json", ".dvc/config"} <= set(tracked)
    assert not [f for f in tracked if f.startswith(("results/", "data/"))]
    assert run([sys.executable, "-m", "dvc", "status"], repo).stdout.strip().endswith("up to date.")
    assert planned_jobs(repo) == {}  # recording re-runs nothing


def test_fresh_clone_pull_does_no_computation(recorded, tmp_path):
    repo, _ = recorded
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    eenet_dvc("pull", clone)
    assert (clone / "results" / "tiny" / "curve.pdf").read_bytes() == (repo / "results" / "tiny" / "curve.pdf").read_bytes()
    assert planned_jobs(clone) == {}
    # and in the pulled clone, only what a change touches would re-run
    after_fit = {"fit_scheduler", "evaluate_test", "measure_runtime", "compute_stats", "plot_curve"}
    original = edit_config(clone, lambda b: b["budgets"]["values"].append(0.8))
    assert set(planned_jobs(clone)) == after_fit
    (clone / "config" / "config.yaml").write_text(original)
    original = edit_config(clone, lambda b: b["train"].update(lr=0.02))
    assert set(planned_jobs(clone)) == {
        "train_multiexit",
        "cache_logits",
        "profile_latency",
        *after_fit,
    }
    (clone / "config" / "config.yaml").write_text(original)
    module = clone / "src" / "eenet" / "schedulers" / "scores.py"
    text = module.read_text()
    module.write_text(text + "\n# an edit\n")
    assert set(planned_jobs(clone)) == after_fit
    module.write_text(text)
    assert planned_jobs(clone) == {}


def test_lineage_lists_every_artifact_with_hashes_that_match(recorded):
    repo, _ = recorded
    code, graph = lineage(repo)
    assert code == 0 and graph["stale"] is False
    arts = graph["artifacts"]
    expected = {"data/fashion_mnist/manifest.json", "results/tiny/model.pt", "results/tiny/logits/val.safetensors",
                "results/tiny/logits/test.safetensors", "results/tiny/cost.csv"}  # fmt: skip
    for method in ["eenet", "maxpred", "entropy", "oracle"]:
        for budget in ["0.75", "0.9"]:
            expected |= {f"results/tiny/schedulers/{method}/{budget}.json", f"results/tiny/eval/{method}/{budget}.json"}
    assert expected <= set(arts)
    for path in expected | {"results/tiny/curve.pdf"}:
        assert arts[path]["md5"] == md5(repo / path), path
    raw = {m["path"] for m in arts["data/fashion_mnist/manifest.json"]["made_with"]}
    assert "data/fashion_mnist/FashionMNIST/raw/train-images-idx3-ubyte" in raw
    assert arts["results/tiny/model.pt"]["params"]["train"]["epochs"] == 1
    assert arts["results/tiny/cost.csv"]["device"].startswith("cpu")
    assert any(c["path"] == "src/eenet/schedulers/eenet.py" for c in arts["results/tiny/schedulers/eenet/0.9.json"]["code"])
    assert graph["record"]["git_commit"] and graph["record"]["packages"]["torch"]
    short = run([sys.executable, "-m", "eenet.pipeline.lineage", "results/tiny/curve.pdf"], repo).stdout
    assert short.splitlines()[1] == f"{len(arts)} artifact(s) behind results/tiny/curve.pdf, all as recorded"
    text = run([sys.executable, "-m", "eenet.pipeline.lineage", "--tree", "results/tiny/curve.pdf"], repo).stdout
    assert "rule train_multiexit" in text and "up to date" in text


def test_committed_dvc_yaml_is_current_for_the_default_workflow(tmp_path):
    copy_workflow(tmp_path, extra=("config",))
    run([sys.executable, "-m", "eenet.pipeline.dvc", "write", "results/fashion_mnist/curve.pdf"], tmp_path)  # make dvc-yaml's target
    for name in ["dvc.yaml", "dvc-params.yaml"]:
        fresh, committed = yaml.safe_load((tmp_path / name).read_text()), yaml.safe_load((REPO / name).read_text())
        assert fresh == committed, f"{name} is out of date with the workflow: run `make dvc-yaml` (or `make record`)"


def test_corrupt_artifact_is_reported_and_repaired(recorded):
    repo, _ = recorded
    cost = repo / "results" / "tiny" / "cost.csv"
    evaluation = repo / "results" / "tiny" / "eval" / "maxpred" / "0.9.json"
    metrics = repo / "results" / "tiny" / "train_metrics.csv"
    good, good_eval, good_metrics = cost.read_bytes(), evaluation.read_bytes(), metrics.read_bytes()
    # what a run of the demo on another machine changes: latency in cost.csv, so every fit and evaluation after it,
    # and the seconds per epoch in the training log beside an unchanged model.pt
    cost.write_bytes(good + b"tampered\n")
    evaluation.write_bytes(good_eval + b"\n")
    metrics.write_bytes(good_metrics + b"\n")
    status = run([sys.executable, "-m", "dvc", "status"], repo).stdout
    assert "results/tiny/cost.csv" in status and "modified" in status
    code, graph = lineage(repo, check=False)
    assert code == 1 and graph["stale"] is True
    assert any("results/tiny/cost.csv changed" in w for w in graph["artifacts"]["results/tiny/cost.csv"]["why"])
    assert graph["artifacts"]["results/tiny/eval/maxpred/0.9.json"]["stale"] is True  # downstream flagged too
    # the readable tree: one short line per artifact with its first cause; the summary names where it starts, once, first
    short = run([sys.executable, "-m", "eenet.pipeline.lineage", "results/tiny/curve.pdf"], repo, check=False)
    assert short.returncode == 1 and "stale artifact(s) behind results/tiny/curve.pdf; where it starts:" in short.stdout
    assert "[STALE" not in short.stdout and len(short.stdout.splitlines()) <= 8  # the summary first, the tree on request
    text = run([sys.executable, "-m", "eenet.pipeline.lineage", "--tree", "results/tiny/curve.pdf"], repo, check=False)
    assert text.returncode == 1
    assert short.stdout.splitlines()[1:-1] == text.stderr.strip().splitlines()  # the same summary
    assert max(len(line) for line in text.stdout.splitlines() if "STALE" in line) < 300
    assert "results/tiny/curve.pdf  [STALE: " in text.stdout and "more)" in text.stdout
    alias = run([sys.executable, "-m", "eenet.cli", "lineage", "--tree", "results/tiny/curve.pdf"], repo, check=False)
    assert (alias.returncode, alias.stdout, alias.stderr) == (text.returncode, text.stdout, text.stderr)  # `eenet lineage`
    closing = text.stderr.strip().split("where it starts:\n")[1].splitlines()
    assert closing[0].startswith("  results/tiny/cost.csv changed since it was recorded (latency is measured anew")
    assert closing[1] == (
        "  results/tiny/model.pt: results/tiny/train_metrics.csv (made with it) changed since it was recorded"
        " (the file itself is as recorded)"
    )
    # the tampered evaluation and the other budget's evaluation made by the same job (one job a policy, every budget)
    assert closing[2] == "  2 artifact(s) after it changed with it (--verbose: every cause)"
    assert "`make record`" in closing[3] and "`make checkout`" in closing[3] and len(closing) == 4
    assert text.stderr.count("results/tiny/cost.csv") == 1 and "eval/maxpred" not in text.stderr
    verbose = run([sys.executable, "-m", "eenet.pipeline.lineage", "--verbose", "results/tiny/curve.pdf"], repo, check=False).stdout
    assert "upstream results/tiny/eval/maxpred/0.9.json is stale" in verbose and len(verbose) > len(text.stdout)
    eenet_dvc("checkout", repo)
    assert cost.read_bytes() == good and evaluation.read_bytes() == good_eval and metrics.read_bytes() == good_metrics
    assert lineage(repo)[0] == 0
    assert planned_jobs(repo) == {}


def test_record_names_a_commit_holding_exactly_the_code(recorded):
    """`make record` refuses while tracked files differ from the commit it would name; --allow-dirty records them."""
    repo, _ = recorded
    record = repo / "dvc-record.json"
    before = record.read_text()
    assert json.loads(before)["git_dirty"] == []  # recorded on a clean tree: the commit holds exactly the code
    ignore = repo / ".gitignore"
    original = ignore.read_text()
    ignore.write_text(original + "# a local change\n")
    scratch = repo / "workflow" / "scripts" / "not_yet_added.py"  # code git does not hold yet
    scratch.write_text("")
    try:
        proc = run([sys.executable, "-m", "eenet.pipeline.dvc", "record", TARGET], repo, check=False)
        assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert ".gitignore, workflow/scripts/not_yet_added.py differ(s)" in proc.stderr, proc.stderr
        assert "commit first" in proc.stderr and "ALLOW_DIRTY=1" in proc.stderr
        assert record.read_text() == before  # nothing recorded
        scratch.unlink()
        run([sys.executable, "-m", "eenet.pipeline.dvc", "record", TARGET, "--allow-dirty"], repo)
        rec = json.loads(record.read_text())
        assert rec["git_dirty"] == [".gitignore"] and rec["git_commit"] == run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
        first = run([sys.executable, "-m", "eenet.pipeline.lineage", "results/tiny/curve.pdf"], repo).stdout.splitlines()[0]
        assert f"at git commit {rec['git_commit']} plus uncommitted changes to .gitignore;" in first
    finally:
        ignore.write_text(original)
        scratch.unlink(missing_ok=True)
        run(["git", "checkout", "--", "dvc-record.json"], repo)


def test_record_drops_the_lock_entries_of_stages_dvc_yaml_no_longer_has(tmp_path):
    """A regrouped rule (one evaluation stage a policy instead of a policy and budget) leaves no stale stage behind."""
    from eenet.pipeline.dvc import prune_lock

    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"evaluate_test-b-maxpred": {"cmd": "true"}}}))
    old = {"path": "results/b/eval/maxpred/0.5.json", "md5": "0" * 32}
    lock = {"schema": "2.0", "stages": {"evaluate_test-b-maxpred": {"cmd": "true", "outs": [old]},
                                        "evaluate_test-b-maxpred-0.5": {"cmd": "true", "outs": [old]}}}  # fmt: skip
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    assert prune_lock(tmp_path) == ["evaluate_test-b-maxpred-0.5"]
    kept = yaml.safe_load((tmp_path / "dvc.lock").read_text())
    assert kept == {"schema": "2.0", "stages": {"evaluate_test-b-maxpred": lock["stages"]["evaluate_test-b-maxpred"]}}
    assert prune_lock(tmp_path) == []  # nothing left to drop
