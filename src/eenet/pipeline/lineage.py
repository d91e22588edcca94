"""Where did this number come from? The tree of artifacts behind a file, from dvc.yaml + dvc.lock.

    python -m eenet.pipeline.lineage results/fashion_mnist/curve.pdf            # the record, what is stale and why, the remedy
    python -m eenet.pipeline.lineage results/fashion_mnist/curve.pdf --tree     # ... after the tree, one line per artifact
    python -m eenet.pipeline.lineage results/fashion_mnist/curve.pdf --verbose  # the tree with every cause of staleness
    python -m eenet.pipeline.lineage results/fashion_mnist/curve.pdf --json     # everything, for machines
    python -m eenet.pipeline.lineage --record                                 # write dvc-record.json (make record does)

For every artifact: the rule (DVC stage) that made it, its md5 as recorded and whether the file on disk
still matches, the parameters, the md5 of the code files, the device named in the artifact, and the
record (git commit, time, package versions) written by ``make record``. An artifact is *stale* when the
file, or any input or code file of its stage, changed since it was recorded, or something upstream is
stale. By default it prints the record and a summary (where the staleness starts, how many artifacts moved with it,
the remedy); ``--tree`` the whole tree with each artifact's *first* cause; ``--verbose`` and ``--json`` give them all.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from eenet.io import file_digest

__all__ = ["lineage", "write_record", "uncommitted_changes", "origins", "main"]

MEASURED = {
    "profile_latency": "latency is measured anew on every run and machine",
    "frontier_cost": "latency is measured anew on every run and machine",
}
"""Rules whose output differs on every run: a new file from them is expected, not a fault."""

RECORD_FILE = "dvc-record.json"
CODE_PREFIXES = ("src/", "workflow/")
PACKAGES = ["torch", "torchvision", "snakemake", "dvc", "safetensors", "numpy", "eenet"]


def _md5(path: Path, cache: dict[Path, str | None]) -> str | None:
    """The md5 DVC records for a file (``None`` when it is missing), computed once per path."""
    if path not in cache:
        cache[path] = file_digest(path, "md5") if path.is_file() else None
    return cache[path]


def _device(path: Path) -> str | None:
    """The device an artifact says it was made on (JSON key, CSV column or checkpoint field), if any."""
    try:
        if path.suffix == ".json":
            return json.loads(path.read_text()).get("device")
        if path.suffix == ".csv":
            with open(path, newline="") as fh:
                return next(csv.DictReader(fh), {}).get("device")
        if path.suffix == ".pt":
            from eenet.io import load_checkpoint

            return load_checkpoint(path).get("device")
    except (OSError, ValueError, AttributeError):
        return None
    return None


RECORD_OWN = ("dvc.yaml", "dvc.lock", "dvc-params.yaml", RECORD_FILE)
CODE_PATHS = ("src", "workflow", "rules", "Snakefile", "config")
"""Tracked files that recording itself writes: not changes to the code the record describes."""


def uncommitted_changes(workdir: str | Path = ".") -> list[str] | None:
    """Tracked files whose content differs from the git commit ``HEAD`` (staged or not), but the record's own files
    (:data:`RECORD_OWN`), and files of the code (``src/``, ``workflow/``, ``rules/``, ``Snakefile``, ``config/``) that git
    does not track yet; ``None`` outside a git repository or before its first commit (no commit to name)."""
    try:
        changed = subprocess.run(["git", "diff", "--name-only", "HEAD", "--"], cwd=workdir, capture_output=True, text=True)
        untracked = ["git", "ls-files", "--others", "--exclude-standard", "--", *CODE_PATHS]
        new = subprocess.run(untracked, cwd=workdir, capture_output=True, text=True)
    except OSError:
        return None
    if changed.returncode != 0 or new.returncode != 0:
        return None
    return [f for f in changed.stdout.splitlines() + new.stdout.splitlines() if f and f not in RECORD_OWN]


def write_record(workdir: str | Path = ".") -> Path:
    """Write dvc-record.json: when the artifacts were recorded, from which commit, with which packages.

    ``git_dirty``: the tracked files that differed from that commit when it was recorded (``[]``: the commit holds
    exactly the code; ``null``: no git commit to name). ``make record`` refuses to record with such files unless told
    to (:func:`eenet.pipeline.dvc.main`'s ``--allow-dirty``).
    """
    from eenet.io import write_json

    wd = Path(workdir)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=wd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    dirty = uncommitted_changes(wd) if commit else None
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    record = {
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit,
        "git_dirty": dirty,
        "python": sys.version.split()[0],
        "packages": versions,
    }
    path = wd / RECORD_FILE
    write_json(path, record)
    return path


def lineage(target: str, workdir: str | Path = ".") -> dict[str, Any]:
    """The artifacts behind ``target`` (a path relative to ``workdir``), as a graph.

    Returns ``{"target", "record", "stale", "artifacts": {path: node}}``; a node made by the workflow has
    ``stage``, ``rule``, ``md5`` (recorded), ``md5_on_disk``, ``stale``, ``why``, ``params``, ``code`` and
    ``made_with`` (``[{path, md5, changed}]``: code files; other outputs of the same job), ``own_causes``
    (the causes in ``why`` that do not come from an upstream artifact), ``device``
    and ``inputs`` (paths of other nodes); an input the
    workflow did not make (a file outside results/ and data/) has ``md5`` and ``changed``.

    Raises:
        FileNotFoundError: no dvc.yaml / dvc.lock, or ``target`` is not an output of any stage.
    """
    wd = Path(workdir)
    for name in ("dvc.yaml", "dvc.lock"):
        if not (wd / name).is_file():
            raise FileNotFoundError(f"{wd / name} is missing: run `make record` after the pipeline")
    stages = yaml.safe_load((wd / "dvc.yaml").read_text())["stages"]
    locked = yaml.safe_load((wd / "dvc.lock").read_text()).get("stages", {})
    record = json.loads((wd / RECORD_FILE).read_text()) if (wd / RECORD_FILE).is_file() else {}
    producer = {out: name for name, st in stages.items() for out in st.get("outs", [])}
    if target not in producer:
        raise FileNotFoundError(f"{target} is not an output of any stage in {wd / 'dvc.yaml'}")
    hashes: dict[Path, str | None] = {}
    artifacts: dict[str, dict[str, Any]] = {}

    def visit(path: str) -> dict[str, Any]:
        if path in artifacts:
            return artifacts[path]
        name = producer[path]
        lock = locked.get(name)
        current = _md5(wd / path, hashes)
        node: dict[str, Any] = {"path": path, "stage": name, "rule": name.split("-", 1)[0], "md5_on_disk": current}
        artifacts[path] = node
        if lock is None:
            never = ["never recorded (run `make record`)"]
            node.update(md5=None, stale=True, why=never, own_causes=never, params={}, code=[], made_with=[], inputs=[])
            return node
        recorded = {o["path"]: o.get("md5") for o in lock.get("outs", [])}
        why = []
        if current != recorded.get(path):
            why.append(f"{path} changed since it was recorded" if current else f"{path} is missing")
        siblings = []  # the other outputs of the same job (e.g. a dataset's raw files beside its manifest)
        for other, md5 in recorded.items():
            if other != path:
                changed = _md5(wd / other, hashes) != md5
                siblings.append({"path": other, "md5": md5, "changed": changed})
                if changed:
                    why.append(f"{other} (made with it) changed since it was recorded")
        own = list(why)  # causes of this artifact's own, not inherited from an upstream artifact
        code, inputs = [], []
        for dep in lock.get("deps", []):
            now = _md5(wd / dep["path"], hashes)
            changed = now != dep.get("md5")
            if changed:
                why.append(f"input {dep['path']} changed since it was recorded")
                if dep["path"] not in producer:  # a workflow artifact that changed is reported where it was made
                    own.append(why[-1])
            if dep["path"] in producer:
                inputs.append(dep["path"])
                if visit(dep["path"])["stale"]:
                    why.append(f"upstream {dep['path']} is stale")
            elif dep["path"].startswith(CODE_PREFIXES):
                code.append({"path": dep["path"], "md5": dep.get("md5"), "changed": changed})
            else:
                artifacts.setdefault(dep["path"], {"path": dep["path"], "md5": dep.get("md5"), "changed": changed})
                inputs.append(dep["path"])
        params: dict[str, Any] = {}
        for file_params in (lock.get("params") or {}).values():
            for values in file_params.values():
                params.update(values if isinstance(values, dict) else {})
        node.update(md5=recorded.get(path), stale=bool(why), why=why, own_causes=own, params=params, code=code, device=_device(wd / path),
                    made_with=siblings, inputs=inputs)  # fmt: skip
        return node

    root = visit(target)
    return {"target": target, "stale": root["stale"], "record": record, "artifacts": artifacts}


def root_causes(graph: dict[str, Any]) -> dict[str, str]:
    """Stale artifacts that are stale for a reason of their own (not only because something upstream is),
    with that reason: ``{path: first own cause}``."""
    return {path: node["own_causes"][0] for path, node in graph["artifacts"].items() if node.get("stale") and node.get("own_causes")}


def _moved(graph: dict[str, Any]) -> dict[str, bool]:
    """Per artifact: whether its content moved — its own file differs from the record, or an artifact upstream moved.
    (Staleness also spreads from an artifact whose own file is as recorded, e.g. one made beside a changed log.)"""
    arts, memo = graph["artifacts"], {}

    def moved(path: str) -> bool:
        if path not in memo:
            node = arts[path]
            if "stage" not in node:  # an input the workflow did not make
                memo[path] = bool(node.get("changed"))
            else:
                memo[path] = False  # (no cycles in a job graph; this only guards the recursion)
                memo[path] = node.get("md5_on_disk") != node.get("md5") or any(moved(i) for i in node["inputs"])
        return memo[path]

    return {path: moved(path) for path in arts}


def origins(graph: dict[str, Any]) -> dict[str, str]:
    """Where the staleness starts: the stale artifacts with a cause of their own none of whose inputs moved (see
    :func:`_moved`), ``{path: first own cause}``. Every other stale artifact is stale because of one of them: it
    follows from them, or it changed with them (its own file differs because an input's content did)."""
    arts, moved = graph["artifacts"], _moved(graph)
    return {
        path: node["own_causes"][0]
        for path, node in arts.items()
        if node.get("stale") and node.get("own_causes") and not any(moved[i] for i in node["inputs"])
    }


def summary(graph: dict[str, Any]) -> list[str]:
    """The closing lines of the readable tree: where the staleness starts (each cause once, a re-measured file first),
    how many artifacts changed with it, and what to do."""
    arts = graph["artifacts"]
    stale = [p for p, n in arts.items() if n.get("stale")]
    starts = origins(graph)
    by_cause: dict[str, list[str]] = {}
    for path in sorted(starts, key=lambda p: (arts[p].get("rule") not in MEASURED, p)):
        by_cause.setdefault(starts[path], []).append(path)
    lines = [f"{len(stale)} stale artifact(s) behind {graph['target']}; where it starts:"]
    for why, paths in by_cause.items():
        node = arts[paths[0]]
        if len(paths) > 1:  # one cause (a changed code file, say) behind several artifacts: named once
            more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
            lines.append(f"  {why}: {', '.join(paths[:3])}{more}")
            continue
        text = why if why.startswith(paths[0]) else f"{paths[0]}: {why}"
        if node.get("rule") in MEASURED:
            text += f" ({MEASURED[node['rule']]}: every fit, evaluation and figure after it moves with it)"
        elif node.get("md5_on_disk") == node.get("md5"):
            text += " (the file itself is as recorded)"
        lines.append(f"  {text}")
    changed_after = [p for p in stale if p not in starts and arts[p].get("own_causes")]
    if changed_after:
        lines.append(f"  {len(changed_after)} artifact(s) after it changed with it (--verbose: every cause)")
    if any(c.startswith("input ") for c in starts.values()):
        lines.append("to bring them up to date: run the workflow (snakemake) on the target, then `make record`")
    if any(c.endswith("changed since it was recorded") and not c.startswith("input ") for c in starts.values()):
        lines.append("to adopt the files on disk as the record: `make record`; to restore the recorded ones: `make checkout`")
    return lines


def _print_record(graph: dict[str, Any], out=sys.stdout) -> None:
    rec = graph.get("record") or {}
    if rec:
        pk = ", ".join(f"{k} {v}" for k, v in rec.get("packages", {}).items() if v)
        dirty = rec.get("git_dirty")
        if isinstance(dirty, list) and dirty:  # recorded with --allow-dirty: the commit does not hold exactly this code
            more = f" and {len(dirty) - 3} more" if len(dirty) > 3 else ""
            dirty = f" plus uncommitted changes to {', '.join(dirty[:3])}{more}"
        else:
            dirty = " (uncommitted changes)" if dirty is True else ""  # a record of an older version: a bare flag
        print(f"recorded {rec.get('recorded_at')} at git commit {rec.get('git_commit')}{dirty}; python {rec.get('python')}; {pk}", file=out)
    else:
        print(f"no {RECORD_FILE}: run `make record`", file=out)


def _print(graph: dict[str, Any], out=sys.stdout, verbose: bool = False) -> None:
    _print_record(graph, out)
    arts, shown = graph["artifacts"], set()

    def show(path: str, indent: str) -> None:
        node = arts[path]
        if "stage" not in node:
            print(f"{indent}{path}  md5 {node['md5']}{'  CHANGED' if node['changed'] else ''}", file=out)
            return
        if path in shown:
            print(f"{indent}{path}  (see above)", file=out)
            return
        shown.add(path)
        if not node["stale"]:
            state = "up to date"
        elif verbose:
            state = "STALE: " + "; ".join(node["why"])
        else:
            more = f" (+{len(node['why']) - 1} more)" if len(node["why"]) > 1 else ""
            state = f"STALE: {node['why'][0]}{more}"
        print(f"{indent}{path}  [{state}]", file=out)
        pad = indent + "    "
        print(f"{pad}rule {node['rule']} (stage {node['stage']}), md5 {node['md5']}", file=out)
        if node.get("device"):
            print(f"{pad}device: {node['device']}", file=out)
        if node["params"]:
            print(f"{pad}params: {json.dumps(node['params'], sort_keys=True)}", file=out)
        for kind in ("made_with", "code"):
            for c in node[kind]:
                label = "made with" if kind == "made_with" else "code"
                print(f"{pad}{label} {c['path']}  md5 {c['md5']}{'  CHANGED' if c['changed'] else ''}", file=out)
        for child in node["inputs"]:
            show(child, pad)

    show(graph["target"], "")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("target", nargs="?")
    ap.add_argument("--json", action="store_true", help="print the tree as JSON (every cause of staleness)")
    ap.add_argument("--tree", action="store_true", help="the whole tree of artifacts, one line each, then the summary")
    ap.add_argument("-v", "--verbose", action="store_true", help="the tree with every cause of staleness, not only the first")
    ap.add_argument("--record", action="store_true", help=f"write {RECORD_FILE} (git commit, time, package versions)")
    ap.add_argument("--workdir", default=".")
    args = ap.parse_args(argv)
    if args.record:
        print(f"wrote {write_record(args.workdir)}")
        return 0
    if not args.target:
        ap.error("give a file, e.g. results/fashion_mnist/curve.pdf")
    try:
        graph = lineage(args.target, args.workdir)
    except FileNotFoundError as exc:
        print(f"lineage: {exc}", file=sys.stderr)
        return 2
    stale = [p for p, n in graph["artifacts"].items() if n.get("stale")]
    if args.json:
        print(json.dumps(graph, indent=2))
    elif args.tree or args.verbose:
        _print(graph, verbose=args.verbose)
        if stale:
            print("\n" + "\n".join(summary(graph)), file=sys.stderr)
    else:  # for a person: the record, then where the staleness starts and what to do; the tree on request
        _print_record(graph)
        n = len(graph["artifacts"])
        if stale:
            print("\n".join(summary(graph)))
        else:
            print(f"{n} artifact(s) behind {graph['target']}, all as recorded")
        print("(--tree: every artifact, its rule, parameters and code; --json: everything)")
    return 1 if stale else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. piped into `head`
        sys.exit(0)
