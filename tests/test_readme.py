"""Every command the README shows is a claim: this test runs the workflow commands as written (as dry runs
where they would train for hours), and checks that each other command is run by the test or benchmark named
for it here. A command added to the README without either fails the test."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from test_workflow import REPO, copy_workflow

# command -> (file that runs it, a string that file contains where it does)
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
        "test_readme_and_docs_commands_as_written",
    ),
    "make report": ("tests/test_report.py", '"--report", "results/report.html"'),
    "make seeds": ("tests/test_seeds.py", 'b["train"]["seed"] = [0, 1]'),
    # several GPUs: the same training through the local SLURM with 2 ranks (a GPU cluster is not at hand)
    ".venv/bin/snakemake --workflow-profile profiles/slurm results/imagenet/curve.pdf --configfile my_cluster.yaml": (
        "tests/test_slurm.py",
        "test_two_rank_training_is_one_slurm_job_with_two_tasks",
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


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    lines = [
        line.split("  #")[0].split(" # ")[0].strip()
        for block in re.findall(r"```bash\n(.*?)```", text, re.S)
        for line in block.splitlines()
    ]
    return list(dict.fromkeys(c for c in lines if c and not c.startswith("#") and not c.startswith(NOT_OURS)))


def workflow_commands() -> list[str]:
    return [c for c in readme_commands() if c.startswith(".venv/bin/snakemake") and c not in COVERED_ELSEWHERE]


def test_every_readme_command_is_run_somewhere():
    commands = readme_commands()
    assert "make demo" in commands and "make test" in commands
    for command in commands:
        if command in workflow_commands():
            continue
        assert command in COVERED_ELSEWHERE, f"README command {command!r} is run by no test or benchmark"
        path, marker = COVERED_ELSEWHERE[command]
        assert marker in (REPO / path).read_text(), f"{path} no longer runs {command!r}"
    assert len(workflow_commands()) >= 4


@pytest.fixture(scope="module")
def default_copy(tmp_path_factory) -> Path:
    wd = copy_workflow(tmp_path_factory.mktemp("readme"), extra=("config",))
    # the README's "your own config": one benchmark's budgets changed
    (wd / "my.yaml").write_text("benchmarks:\n  fashion_mnist:\n    budgets: {values: [0.5, 0.65]}\n")
    return wd


@pytest.mark.parametrize("command", workflow_commands())
def test_readme_workflow_command_as_written(command, default_copy):
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
    if "--configfile" in argv:
        assert "results/fashion_mnist/schedulers/eenet/0.65.json" in out
        assert "results/fashion_mnist/schedulers/eenet/0.45.json" not in out
        assert "results/cifar100/curve.pdf" in out  # merged over the default: the other benchmarks stay
