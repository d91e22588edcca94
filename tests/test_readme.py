"""Every command a document shows is a claim. The documents users read are README.md and docs/*.md; their shell
blocks (```bash, ```sh, ```shell) hold the commands. This test runs the workflow commands among them as written (as
dry runs where they would train for hours), and checks that each other command is run by the test or benchmark
named for it in COVERED_ELSEWHERE, in that file's *code*: the named string must be in the file once its comments and
its bare string statements (docstrings) are taken out, so a comment that merely mentions a command covers nothing.
A command added to a document without either fails the test, and so does an entry of COVERED_ELSEWHERE that no
document shows any more.

benchmarks/RESULTS.md is a log that the benchmark scripts append to: its invocations are inline, with the
arguments of the run that wrote each section (paths of that machine, `$OUT` of a device run), so they are not run
again here. What is checked instead, for it and for every document above: each `python benchmarks/<script>.py ...`
named in a document is a script of benchmarks/ whose argument parser declares every `--option` the invocation uses.
Inline command mentions in prose (`make bench`) are not commands of a shell block and are not checked."""

from __future__ import annotations

import ast
import io
import re
import shlex
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest
from helpers import REPO, copy_workflow

DOCS = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
LOGS = ["benchmarks/RESULTS.md"]  # benchmark invocations only (see the module docstring)
SHELL_BLOCK = re.compile(r"```(?:bash|sh|shell)\n(.*?)```", re.S)
BENCHMARK_CALL = re.compile(r"python (benchmarks/[\w.]+\.py)([^`\n]*)")
WORKFLOW = (".venv/bin/snakemake ", "snakemake ")

STATS = ("tests/test_stats.py", '"-m", "eenet.analysis.stats"')
# command -> (file that runs it, a string that file's code contains where it does)
COVERED_ELSEWHERE = {
    "make demo": ("benchmarks/time_pipeline.py", "results/fashion_mnist/curve.pdf"),
    "make test": (".ci/run", "make test"),
    ".venv/bin/snakemake --workflow-profile profiles/slurm all": ("tests/test_slurm.py", "--workflow-profile"),
    "make record": ("tests/test_dvc.py", 'eenet_dvc("record"'),
    "make push": ("tests/test_dvc.py", 'eenet_dvc("push"'),
    "git clone ... && cd ... && make pull": ("tests/test_dvc.py", '"pull"'),
    "make lineage FILE=results/fashion_mnist/curve.pdf": ("tests/test_dvc.py", '"eenet.pipeline.lineage", "results/tiny/curve.pdf"'),
    ".venv/bin/python -m eenet.pipeline.lineage results/fashion_mnist/curve.pdf --json": (
        "tests/test_dvc.py",
        '"eenet.pipeline.lineage", "--json"',
    ),
    "make checkout": ("tests/test_dvc.py", 'eenet_dvc("checkout"'),
    ".venv/bin/eenet predict results/fashion_mnist --method maxpred --budget 0.5 examples/fashion_mnist": (
        "tests/test_predict.py",
        "README_PREDICT.findall(",
    ),
    ".venv/bin/eenet export results/fashion_mnist --method maxpred --budget 0.5 -o maxpred.pt2": (
        "tests/test_predict.py",
        'startswith(".venv/bin/eenet export ")',
    ),
    "make report": ("tests/test_report.py", '"--report", "results/report.html"'),
    "make seeds": ("tests/test_seeds.py", 'b["train"]["seed"] = [0, 1]'),
    # docs/results.md: the statistics tables, printed from a stats.csv
    ".venv/bin/python -m eenet.analysis.stats results/fashion_mnist/stats.csv": STATS,
    ".venv/bin/python -m eenet.analysis.stats results/fashion_mnist_3seeds/stats.csv": STATS,
    ".venv/bin/python -m eenet.analysis.stats results/rotten_tomatoes/stats.csv": STATS,
    ".venv/bin/python -m eenet.analysis.stats results/fashion_mnist_6exit/stats.csv": STATS,
    ".venv/bin/python -m eenet.analysis.stats results/rotten_tomatoes_6exit/stats.csv": STATS,
    # several GPUs: the same training through the local SLURM with 2 ranks (a GPU cluster is not at hand)
    ".venv/bin/snakemake --workflow-profile profiles/slurm results/imagenet/curve.pdf --configfile my_cluster.yaml": (
        "tests/test_slurm.py",
        "def test_two_rank_training_is_one_slurm_job_with_two_tasks(",
    ),
    # the README's own-benchmark examples, run to the curve on data and a model the test makes (small settings merged in)
    ".venv/bin/snakemake --cores 8 results/shapes/curve.pdf --configfile my_images.yaml": (
        "tests/test_own_benchmark.py",
        'snakemake(wd, target, examples, "--configfile", example, example.replace("my_", "small_"))',
    ),
    ".venv/bin/snakemake --cores 8 results/reviews/curve.pdf --configfile my_texts.yaml": (
        "tests/test_own_benchmark.py",
        'zip(TARGETS, ("my_images.yaml", "my_texts.yaml")',
    ),
}
NOT_OURS = ("git add ",)  # git's own commands


def shell_commands(text: str) -> list[str]:
    """The commands of a Markdown text's shell blocks, without trailing comments, in order, each once."""
    lines = [line.split("  #")[0].split(" # ")[0].strip() for block in SHELL_BLOCK.findall(text) for line in block.splitlines()]
    return list(dict.fromkeys(c for c in lines if c and not c.startswith("#") and not c.startswith(NOT_OURS)))


def doc_commands() -> dict[str, list[str]]:
    """command -> the documents that show it."""
    found: dict[str, list[str]] = {}
    for doc in DOCS + LOGS:
        for command in shell_commands((REPO / doc).read_text()):
            found.setdefault(command, []).append(doc)
    return found


def readme_commands() -> list[str]:
    return shell_commands((REPO / "README.md").read_text())


def workflow_commands() -> list[str]:
    return [c for c in doc_commands() if c.startswith(WORKFLOW) and c not in COVERED_ELSEWHERE]


def code_text(path: Path) -> str:
    """``path`` with its comments blanked out, and for Python also every bare string statement (docstrings): what
    is left is what runs. Line and column positions are kept."""
    source = path.read_text()
    if path.suffix != ".py":  # shell, Makefile: a '#' at a line's start or after a blank starts a comment
        return "\n".join(re.sub(r"(^|\s)#.*", "", line) for line in source.splitlines())
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(lineno: int, col: int, in_bytes: bool) -> int:
        line = lines[lineno - 1]
        return starts[lineno - 1] + (len(line.encode()[:col].decode()) if in_bytes else col)

    spans = [
        (offset(n.lineno, n.col_offset, True), offset(n.end_lineno, n.end_col_offset, True))
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
    ]
    spans += [
        (offset(*tok.start, False), offset(*tok.end, False))
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    ]
    chars = list(source)
    for a, b in spans:
        chars[a:b] = [c if c == "\n" else " " for c in chars[a:b]]
    return "".join(chars)


def runs_in_code(path: Path, marker: str) -> bool:
    return path.is_file() and marker in code_text(path)


def test_a_comment_or_docstring_does_not_cover_a_command(tmp_path):
    """The checker itself: the covering string in code counts; the same string in a comment, a docstring or a bare
    string statement does not, in Python and in shell files."""
    marker = 'eenet_dvc("record"'
    code = tmp_path / "test_code.py"
    code.write_text(f'def test_it():\n    """Runs {marker}."""\n    {marker}, "x")  # {marker}\n')
    assert runs_in_code(code, marker)
    comment = tmp_path / "test_comment.py"
    comment.write_text(
        f"\"\"\"Module: {marker}.\"\"\"\n\n\ndef test_it():\n    # {marker}, \"x\")\n    '''{marker}'''\n    '{marker}'\n    pass\n"
    )
    assert not runs_in_code(comment, marker)
    assert "def test_it():" in code_text(comment)  # code stays
    unicode = tmp_path / "test_unicode.py"
    unicode.write_text('x = "é"; "run_it"\ny = "run_it"\n')  # columns after a non-ASCII character
    assert code_text(unicode).splitlines()[0].rstrip() == 'x = "é";' and runs_in_code(unicode, "run_it")
    shell = tmp_path / "run"
    shell.write_text("#!/usr/bin/env bash\n# make test\ncd . # make test\n")
    assert not runs_in_code(shell, "make test")
    shell.write_text("#!/usr/bin/env bash\nmake test  # the suite\n")
    assert runs_in_code(shell, "make test")
    assert not runs_in_code(tmp_path / "missing.py", marker)


def test_every_documented_command_is_run_somewhere():
    commands = doc_commands()
    assert "make demo" in readme_commands() and "make test" in readme_commands()
    workflow = workflow_commands()
    for command, docs in commands.items():
        if command in workflow:
            continue
        assert command in COVERED_ELSEWHERE, f"{', '.join(docs)}: command {command!r} is run by no test or benchmark"
        path, marker = COVERED_ELSEWHERE[command]
        assert runs_in_code(REPO / path, marker), f"{path} no longer runs {command!r} ({marker!r} is not in its code)"
    stale = [c for c in COVERED_ELSEWHERE if c not in commands]
    assert not stale, f"COVERED_ELSEWHERE names commands no document shows: {stale}"
    assert len(workflow) >= 4


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
    calls = [(doc, m.group(1), m.group(2)) for doc in DOCS + LOGS for m in BENCHMARK_CALL.finditer((REPO / doc).read_text())]
    assert any(doc == "benchmarks/RESULTS.md" for doc, _, _ in calls) and any(doc in DOCS for doc, _, _ in calls)
    for doc, script, args in calls:
        path = REPO / script
        assert path.is_file(), f"{doc}: `python {script}` names no script"
        options = {word.split("=")[0] for word in args.split() if word.startswith("--")}
        unknown = options - declared_options(path)
        assert not unknown, f"{doc}: `python {script}{args}` uses {sorted(unknown)}, which {script} does not declare"


@pytest.fixture(scope="module")
def default_copy(tmp_path_factory) -> Path:
    wd = copy_workflow(tmp_path_factory.mktemp("readme"), extra=("config",))
    # the README's "your own config": one benchmark's budgets changed
    (wd / "my.yaml").write_text("benchmarks:\n  fashion_mnist:\n    budgets: {values: [0.5, 0.65]}\n")
    return wd


@pytest.mark.parametrize("command", workflow_commands())
def test_documented_workflow_command_as_written(command, default_copy):
    argv = shlex.split(command)
    snakemake = REPO / ".venv" / "bin" / "snakemake"
    argv = ([str(snakemake)] if snakemake.exists() else [sys.executable, "-m", "snakemake"]) + argv[1:]
    if "-n" not in argv:
        argv.append("-n")  # these would train for hours: plan them
    proc = subprocess.run(
        argv, cwd=default_copy, capture_output=True, text=True, timeout=300, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Job stats:" in out
    if "my.yaml" in argv:
        assert "results/fashion_mnist/schedulers/eenet/0.65.json" in out
        assert "results/fashion_mnist/schedulers/eenet/0.45.json" not in out
        assert "results/cifar100/curve.pdf" in out  # merged over the default: the other benchmarks stay
