"""Every command a document shows is a claim. The documents are README.md, docs/*.md and benchmarks/RESULTS.md
(helpers.DOCUMENTS); their shell blocks (```bash, ```sh, ```shell) hold the commands. Each command is, in exactly one
way:

- run here as written (:func:`run_here` says which test of this module runs it: the dry run, the statistics tables,
  the lineage), the exact string taken from the document;
- run as written by another test or benchmark, named in :data:`RUN_ELSEWHERE`: that file takes the command with
  ``helpers.documented("<the command>")``, the exact string written out in its code (found in its syntax tree, so a
  comment or a docstring holds nothing), and ``documented`` fails when no document shows it any more;
- or not run, with the reason, in :data:`NOT_RUN`. The workflow commands among them are planned as written with
  ``-n`` appended (a dry run in a copy of the workflow), the ``make`` commands with ``make -n``.

A command added to a document without either fails the test; so does an entry of either table that no document
shows, and a runner that no longer holds its command.

benchmarks/RESULTS.md is a log that the benchmark scripts append to: its invocations are inline, with the
arguments of the run that wrote each section (paths of that machine, `$OUT` of a device run), so they are not run
again here. What is checked instead, for it and for every document above: each `python benchmarks/<script>.py ...`
named in a document is a script of benchmarks/ whose argument parser declares every `--option` the invocation uses.
Inline command mentions in prose (`make bench`) are not commands of a shell block and are not checked."""

from __future__ import annotations

import ast
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DOCUMENTS, REPO, copy_workflow, documented_commands

BENCHMARK_CALL = re.compile(r"python (benchmarks/[\w.]+\.py)([^`\n]*)")
WORKFLOW = (".venv/bin/snakemake ", "snakemake ")
STATS = ".venv/bin/python -m eenet.analysis.stats "
LINEAGE = (".venv/bin/python -m eenet.pipeline.lineage ", "make lineage ")

RUN_ELSEWHERE: dict[str, str] = {
    # the demo's results stand in for by the tiny run's (budget 0.5 fitted by the workflow), the demo images copied in
    ".venv/bin/eenet predict results/fashion_mnist --method maxpred --budget 0.5 examples/fashion_mnist": "tests/test_predict.py",
    ".venv/bin/eenet export results/fashion_mnist --method maxpred --budget 0.5 -o maxpred.pt2": "tests/test_predict.py",
    # the README's own-benchmark examples, on data and a model the test makes, small settings as a second config file
    ".venv/bin/snakemake --cores 8 results/shapes/curve.pdf --configfile my_images.yaml": "tests/test_own_benchmark.py",
    ".venv/bin/snakemake --cores 8 results/reviews/curve.pdf --configfile my_texts.yaml": "tests/test_own_benchmark.py",
}
"""Command -> the test or benchmark that runs it as written, taking it with ``helpers.documented("<command>")``."""

_TRAINS = "trains {what}: {time} (planned here as written, with -n)"
_STUDY = (
    "the re-split study on a run's cached files (17 min for 100 re-splits on 2 cores; the files of a 6-exit run that "
    "trains for hours); tests/test_reliability.py runs the study's library calls and its rule on the tiny benchmark"
)
NOT_RUN: dict[str, str] = {
    "python benchmarks/reliability_study.py --run fashion_mnist_6exit_light/seed0": _STUDY,
    "python benchmarks/reliability_study.py --run fashion_mnist_6exit_light/seed0 --accuracy-loss 0.03": _STUDY,
    "python benchmarks/reliability_study.py --run fashion_mnist_6exit/seed0": _STUDY,
    "python benchmarks/reliability_study.py --run fashion_mnist_6exit/seed0 --accuracy-loss 0.03": _STUDY,
    "make demo": "installs the environment and trains the default benchmark: 6-10 min on 2 cores (planned here with make -n; "
    "`make bench`, benchmarks/time_pipeline.py, times its Snakemake target)",
    "make test": "the test suite itself: a test that ran it would run itself (CI's .ci/run runs it; planned here with make -n)",
    "make report": "runs the demo first (6-10 min on 2 cores); tests/test_report.py makes the report of the tiny benchmark",
    "make seeds": "trains the demo's network with three seeds: ~40 min on 2 cores; tests/test_seeds.py runs the seed study "
    "on the tiny benchmark",
    "make record": "records into the repository's own dvc.lock and DVC cache (it changes the repository); tests/test_dvc.py "
    "records a copy through the same module",
    "make push": "sends the artifacts to the DVC remote (another machine's store, over the network)",
    "git clone ... && cd ... && make pull": "placeholders for your repository's address; fetches from the DVC remote (network)",
    "make checkout": "overwrites the repository's results/ with the DVC cache's copies; tests/test_dvc.py checks out a copy",
    ".venv/bin/snakemake --cores 8 results/cifar100/curve.pdf": _TRAINS.format(
        what="DenseNet-BC on CIFAR-100", time="hours on a GPU, the data from the internet"
    ),
    ".venv/bin/snakemake --cores 8 all": _TRAINS.format(what="every benchmark", time="days on a GPU, the paper's data from the internet"),
    ".venv/bin/snakemake --cores 8 all --configfile my.yaml": _TRAINS.format(
        what="every benchmark, one budget list changed", time="days on a GPU"
    ),
    ".venv/bin/snakemake --workflow-profile profiles/slurm all": "needs a SLURM cluster with GPUs and an account; "
    "tests/test_slurm.py runs the profile on a local one-node SLURM with the tiny benchmark",
    ".venv/bin/snakemake --workflow-profile profiles/slurm results/imagenet/curve.pdf --configfile my_cluster.yaml": "needs a "
    "SLURM cluster with several GPUs and ImageNet; tests/test_slurm.py runs two-rank training on a local SLURM",
    "snakemake --cores 2 results/fashion_mnist_6exit/curve.pdf": _TRAINS.format(
        what="the 6-exit Fashion-MNIST network and 7 plain networks alone, 3 seeds", time="about 3 h on 2 cores"
    ),
    "snakemake --cores 2 results/rotten_tomatoes_6exit/curve.pdf": _TRAINS.format(
        what="the 6-exit text network", time="tens of minutes on 2 cores"
    ),
    "snakemake --cores 2 results/fashion_mnist_6exit_light/curve.pdf": _TRAINS.format(
        what="the 6-exit Fashion-MNIST network with pool + linear exit heads, 3 seeds", time="about 80 min on 2 busy cores"
    ),
    ".venv/bin/snakemake --cores 2 results/fashion_mnist/reliability.pdf": _TRAINS.format(
        what="the demo's network, then 100 re-splits", time="the demo's 6-10 min and 2 more on 2 cores"
    ),
    ".venv/bin/snakemake --cores 2 results/rotten_tomatoes/curve.pdf": _TRAINS.format(
        what="the MiniLM text benchmark", time="about 45 min on 2 cores"
    ),
    ".venv/bin/snakemake --cores 2 results/fashion_mnist_6exit/curve.pdf results/rotten_tomatoes_6exit/curve.pdf": _TRAINS.format(
        what="both 6-exit benchmarks", time="about 3.5 h on 2 cores"
    ),
    ".venv/bin/snakemake --cores 2 results/fashion_mnist_6exit_light/curve.pdf": _TRAINS.format(
        what="the 6-exit Fashion-MNIST network with pool + linear exit heads, 3 seeds", time="about 80 min on 2 busy cores"
    ),
}
"""Command -> why no test runs it (what it needs, or how long it takes)."""


def run_here(command: str) -> str | None:
    """The test of this module that runs ``command`` as written, if one does."""
    if command.startswith(WORKFLOW) and "-n" in shlex.split(command):
        return "test_documented_workflow_command_plans"
    if command.startswith(STATS):
        return "test_documented_statistics_tables_as_written"
    if command.startswith(LINEAGE):
        return "test_documented_lineage_commands_as_written"
    return None


def commands_run_here(test: str) -> list[str]:
    return [c for c in documented_commands() if run_here(c) == test]


def documented_calls(path: Path) -> list[str]:
    """The commands a Python file's code takes with ``documented("<command>")`` (a call of the name imported from
    helpers, its argument a string written out): read from the syntax tree, so comments and docstrings hold none."""
    tree = ast.parse(path.read_text())
    imported = any(
        isinstance(n, ast.ImportFrom) and n.module == "helpers" and any(a.name == "documented" and a.asname is None for a in n.names)
        for n in ast.walk(tree)
    )
    calls = [
        n.args[0].value
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "documented"
        if n.args and isinstance(n.args[0], ast.Constant) and isinstance(n.args[0].value, str)
    ]
    return calls if imported else []


def runners() -> dict[str, set[str]]:
    """Command -> the tests and benchmarks that take it with ``documented(...)``."""
    found: dict[str, set[str]] = {}
    for path in [*sorted((REPO / "tests").glob("test_*.py")), *sorted((REPO / "benchmarks").glob("*.py"))]:
        for command in documented_calls(path):
            found.setdefault(command, set()).add(str(path.relative_to(REPO)))
    return found


def test_only_a_call_written_out_in_code_holds_a_command(tmp_path):
    """The checker itself: ``documented("<command>")`` in code counts; the same text in a comment, a docstring or a
    string does not, nor a call of another ``documented`` or with the command in a variable."""
    command = ".venv/bin/eenet predict x"
    code = tmp_path / "test_code.py"
    code.write_text(f'from helpers import REPO, documented\n\n\ndef test_it():\n    argv = documented("{command}").split()\n')
    assert documented_calls(code) == [command]
    not_code = tmp_path / "test_not_code.py"
    not_code.write_text(
        f'"""documented("{command}")"""\nfrom helpers import documented\n\n\ndef test_it():\n'
        f'    # documented("{command}")\n    text = \'documented("{command}")\'\n    c = "{command}"\n    documented(c)\n'
    )
    assert documented_calls(not_code) == []
    other = tmp_path / "test_other.py"
    other.write_text(f'from mine import documented\n\ndocumented("{command}")\n')
    assert documented_calls(other) == []


def test_every_documented_command_is_run_as_written_or_listed_as_not_run():
    commands = documented_commands()
    assert set(DOCUMENTS) >= {"README.md", "benchmarks/RESULTS.md"} and commands
    for command, docs in commands.items():
        ways = [w for w in (run_here(command), RUN_ELSEWHERE.get(command), NOT_RUN.get(command)) if w]
        assert ways, f"{', '.join(docs)}: {command!r} is run by no test or benchmark: run it as written, or list it in NOT_RUN with why"
        assert len(ways) == 1, f"{command!r} is claimed {len(ways)} ways: {ways}"
    stale = [c for c in [*RUN_ELSEWHERE, *NOT_RUN] if c not in commands]
    assert not stale, f"RUN_ELSEWHERE / NOT_RUN name commands no document shows: {stale}"
    assert all(reason.strip() for reason in NOT_RUN.values())
    found = runners()
    for command, runner in RUN_ELSEWHERE.items():
        assert runner in found.get(command, set()), f'{runner} does not take {command!r} with documented("...") in its code'
    wrong = {c: sorted(files) for c, files in found.items() if files != {RUN_ELSEWHERE.get(c)}}
    assert not wrong, f"tests or benchmarks that take commands RUN_ELSEWHERE does not give them: {wrong}"
    here = {run_here(c) for c in commands} - {None}  # each test of this module that runs commands has some
    assert here == {"test_documented_workflow_command_plans", "test_documented_statistics_tables_as_written",
                    "test_documented_lineage_commands_as_written"}  # fmt: skip


def test_the_coverage_check_finds_what_it_is_for(monkeypatch):
    """A command a document gains without a way to run it, an entry no document shows, a runner that does not take
    its command, and a command claimed two ways each fail the check above."""
    module = sys.modules[__name__]
    shown = documented_commands()
    cases = [
        ("documented_commands", {**shown, "make everything": ["README.md"]}, r"'make everything' is run by no test"),
        ("NOT_RUN", {**NOT_RUN, "make nothing": "no reason"}, r"name commands no document shows: \['make nothing'\]"),
        ("RUN_ELSEWHERE", {**RUN_ELSEWHERE, "make demo": "tests/test_seeds.py"}, "claimed 2 ways"),
        ("RUN_ELSEWHERE", {c: "tests/test_slurm.py" for c in RUN_ELSEWHERE}, "tests/test_slurm.py does not take"),
    ]
    for name, value, message in cases:
        with monkeypatch.context() as m:
            m.setattr(module, name, (lambda found=value: found) if name == "documented_commands" else value)
            with pytest.raises(AssertionError, match=message):
                test_every_documented_command_is_run_as_written_or_listed_as_not_run()


def declared_options(script: Path) -> set[str]:
    """The ``--options`` a script's argument parser declares (``add_argument("--x", ...)``), read from its source."""
    return {
        arg.value
        for node in ast.walk(ast.parse(script.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument"
        for arg in node.args
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("--")
    }


def test_benchmark_invocations_name_real_scripts_and_options():
    calls = [(doc, m.group(1), m.group(2)) for doc in DOCUMENTS for m in BENCHMARK_CALL.finditer((REPO / doc).read_text())]
    assert any(doc == "benchmarks/RESULTS.md" for doc, _, _ in calls) and any(doc != "benchmarks/RESULTS.md" for doc, _, _ in calls)
    for doc, script, args in calls:
        path = REPO / script
        assert path.is_file(), f"{doc}: `python {script}` names no script"
        options = {word.split("=")[0] for word in args.split() if word.startswith("--")}
        unknown = options - declared_options(path)
        assert not unknown, f"{doc}: `python {script}{args}` uses {sorted(unknown)}, which {script} does not declare"


# ---------------------------------------------------------------------------------------------------
# the commands run (or planned) here, as written: in a directory that has `.venv` (this Python's environment)


def with_venv(directory: Path) -> Path:
    """``directory`` with ``.venv`` linking to the environment of this Python, so that ``.venv/bin/...`` runs as
    written there (``make test`` makes the repository's .venv)."""
    venv = REPO / ".venv" if (REPO / ".venv" / "bin" / "python").exists() else Path(sys.prefix)
    if not (venv / "bin" / "python").exists() or not (venv / "bin" / "snakemake").exists():
        pytest.skip(f"no .venv/bin/python and .venv/bin/snakemake to run the documented commands with (looked in {venv})")
    if not (directory / ".venv").exists():
        (directory / ".venv").symlink_to(venv)
    return directory


def run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``argv`` in ``cwd`` (whose ``.venv/bin`` comes first on the PATH, as in an activated environment), offline."""
    env = {"HF_HUB_OFFLINE": "1", "PATH": f"{cwd / '.venv' / 'bin'}:/usr/bin:/bin"}
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def default_copy(tmp_path_factory) -> Path:
    wd = copy_workflow(tmp_path_factory.mktemp("readme"), extra=("config",))
    # the README's "your own config": one benchmark's budgets changed
    (wd / "my.yaml").write_text("benchmarks:\n  fashion_mnist:\n    budgets: {values: [0.5, 0.65]}\n")
    return with_venv(wd)


def planned_workflow_commands() -> list[str]:
    """The dry runs the documents show, and the not-run workflow commands that need no cluster or files of the user's."""
    planned = [c for c in NOT_RUN if c.startswith(WORKFLOW) and "--workflow-profile" not in c and "my_" not in c]
    return commands_run_here("test_documented_workflow_command_plans") + planned


@pytest.mark.parametrize("command", planned_workflow_commands())
def test_documented_workflow_command_plans(command, default_copy):
    argv = shlex.split(command)
    if "-n" not in argv:
        argv.append("-n")  # these would train for hours: plan them
    proc = run(argv, default_copy)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Job stats:" in out
    if "my.yaml" in argv:
        assert "results/fashion_mnist/schedulers/eenet/0.65.json" in out
        assert "results/fashion_mnist/schedulers/eenet/0.45.json" not in out
        assert "results/cifar100/curve.pdf" in out  # merged over the default: the other benchmarks stay


@pytest.mark.parametrize("command", [c for c in NOT_RUN if c.startswith("make ")])
def test_documented_make_commands_plan(command):
    """``make -n`` of the command as written, in the repository (a dry run prints the recipes and runs none)."""
    argv = shlex.split(command)
    proc = subprocess.run([argv[0], "-n", *argv[1:]], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stdout + proc.stderr


def test_documented_statistics_tables_as_written(tmp_path):
    """Each `python -m eenet.analysis.stats results/<bench>/stats.csv` the documents show, as written, on a stats.csv of
    two seeds of three policies made at that path: it prints the table of the means, MaxPred first, the oracle last."""
    import torch

    from eenet.analysis.stats import STATS_FIELDS, seed_stats
    from eenet.io import write_csv

    commands = commands_run_here("test_documented_statistics_tables_as_written")
    assert len(commands) >= 3
    g = torch.Generator().manual_seed(3)
    seeds = []
    for s in range(2):
        accuracy = (("maxpred", 0.7), ("eenet", 0.72), ("oracle", 0.9))
        correct = {(m, b): torch.rand(200, generator=g) < p for m, p in accuracy for b in (0.5, 0.6)}
        evals = [{"method": m, "budget_value": b, "budget_ms": b, "test_accuracy": c.float().mean().item(), "cost_ratio": 1.0}
                 for (m, b), c in correct.items()]  # fmt: skip
        seeds.append((s, correct, evals))
    rows = [{k: r.get(k, "") for k in STATS_FIELDS} for r in seed_stats("b", seeds, 0.05, reps=100)]
    wd = with_venv(tmp_path)
    procs = []
    for command in commands:
        argv = shlex.split(command)
        write_csv(wd / argv[-1], rows, STATS_FIELDS)
        env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
        procs.append((command, subprocess.Popen(argv, cwd=wd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)))
    for command, proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (command, err[-2000:])
        table = [line for line in out.splitlines() if line.startswith("|")]
        assert table[0] == "| policy | 0.5 | 0.6 | AUC (%) | gap to oracle |", (command, out)
        assert [line.split(" | ")[0] for line in table[2:]] == ["| maxpred", "| eenet", "| oracle"], (command, out)


def test_documented_lineage_commands_as_written(tmp_path):
    """The lineage commands docs/design.md shows, as written, beside the repository's dvc.yaml and dvc.lock and none of
    the files they record: the record is printed, and every artifact behind the figure is stale (exit 1), starting
    where the data is missing. ``make`` is told not to remake the environment it runs in (``--old-file``)."""
    commands = commands_run_here("test_documented_lineage_commands_as_written")
    assert {c.split()[0] for c in commands} == {"make", ".venv/bin/python"}
    for name in ("dvc.yaml", "dvc.lock", "dvc-record.json", "Makefile", "requirements.txt", "requirements-nodeps.txt", "pyproject.toml"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, tmp_path / name)
    wd = with_venv(tmp_path)
    record = json.loads((wd / "dvc-record.json").read_text()) if (wd / "dvc-record.json").exists() else None
    for command in commands:
        argv = shlex.split(command)
        target = argv[-1].removeprefix("FILE=") if argv[0] == "make" else argv[argv.index("eenet.pipeline.lineage") + 1]
        proc = run([*argv, "--old-file=.venv/bin/.installed"] if argv[0] == "make" else argv, wd)
        assert proc.returncode == (2 if argv[0] == "make" else 1), proc.stdout + proc.stderr  # make: its recipe failed
        if "--json" in argv:
            graph = json.loads(proc.stdout)
            assert graph["target"] == target and graph["stale"] and target in graph["artifacts"]
            assert all(node["stale"] for node in graph["artifacts"].values()) and graph["record"] == record
        else:
            assert f"stale artifact(s) behind {target}" in proc.stdout and " is missing" in proc.stdout, proc.stdout
            assert record is None or record["git_commit"] in proc.stdout
