"""DVC records what Snakemake made: dvc.yaml from the Snakemake job graph, then commit, push, pull.

    python -m eenet.pipeline.dvc write    [TARGET ...]   # dvc.yaml + dvc-params.yaml (default target: all)
    python -m eenet.pipeline.dvc record   [TARGET ...]   # write, dvc commit, re-sync Snakemake, dvc-record.json (refused when
                                                      # tracked files differ from the git commit; --allow-dirty)
    python -m eenet.pipeline.dvc pull     [TARGET ...]   # dvc pull, then re-sync Snakemake: nothing re-runs
    python -m eenet.pipeline.dvc checkout [TARGET ...]   # restore tracked artifacts from the DVC cache, re-sync
    python -m eenet.pipeline.dvc push                    # dvc push to the default remote

One DVC stage per Snakemake job.
Each stage lists the job's inputs (data, upstream artifacts, its script and package modules) as ``deps``,
its resolved parameters (config values after the schema's defaults) as ``params`` kept in
dvc-params.yaml, and its outputs as ``outs``. ``dvc commit -f`` after a Snakemake run then records the
md5 of everything in dvc.lock without re-running anything (see ``make record``); ``dvc status``
tells stale from fresh by content, and ``python -m eenet.pipeline.lineage`` reads the record.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

__all__ = ["workflow_jobs", "stages_from_jobs", "dvc_files", "write_dvc_files", "sync_snakemake", "main"]

PARAMS_FILE = "dvc-params.yaml"


def workflow_jobs(targets: list[str], workdir: str | Path = ".", snakefile: str | Path = "Snakefile") -> list[dict[str, Any]]:
    """Every job Snakemake would run to make ``targets`` from nothing: rule, wildcards, input, output, params."""
    cwd = os.getcwd()  # the API changes into workdir
    try:
        return _jobs(targets, workdir, snakefile)
    finally:
        os.chdir(cwd)


def _jobs(targets: list[str], workdir: str | Path, snakefile: str | Path) -> list[dict[str, Any]]:
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import DAGSettings, OutputSettings, Quietness, ResourceSettings

    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        wf = api.workflow(ResourceSettings(cores=1), snakefile=Path(snakefile).resolve(), workdir=Path(workdir).resolve())
        wf.dag(DAGSettings(targets=set(targets), forceall=True))
        workflow = wf._workflow  # the job graph is not in the public API
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True)
        workflow._build_dag()
        jobs = []
        for job in workflow.dag.jobs:
            if not job.output:  # target-only rules such as `all`
                continue
            jobs.append(
                {
                    "rule": job.rule.name,
                    "wildcards": dict(job.wildcards.items()),
                    "input": [str(f) for f in job.input],
                    "output": [str(f) for f in job.output],
                    "params": {k: v for k, v in job.params.items()},
                }
            )
    return sorted(jobs, key=lambda j: (j["rule"], j["output"]))


def _dataset_outs(job: dict[str, Any]) -> list[str]:
    """download_dataset's output is a manifest; DVC also tracks the raw files the manifest vouches for."""
    if job["rule"] != "download_dataset":
        return []
    from eenet.data import DatasetSpec, raw_paths

    root = Path(job["output"][0]).parent
    return [str(p) for p in raw_paths(DatasetSpec.from_entry(job["wildcards"]["dataset"], dict(job["params"]["source"])), root)]


def stage_name(job: dict[str, Any]) -> str:
    """``rule-value1-value2``: unique per job, stable across runs (DVC reserves ``@``)."""
    return "-".join([job["rule"], *[str(v) for v in job["wildcards"].values()]])


def stages_from_jobs(jobs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(dvc.yaml content, dvc-params.yaml content) for ``jobs`` as returned by :func:`workflow_jobs`."""
    stages, params = {}, {}
    for job in jobs:
        name = stage_name(job)
        stage: dict[str, Any] = {
            "cmd": f"snakemake --cores 1 --allowed-rules {job['rule']} " + " ".join(job["output"]),
            "deps": sorted(set(job["input"])),
        }
        if job["params"]:
            key = name.replace(".", "_")  # DVC reads dots in parameter names as nesting
            params[key] = json.loads(json.dumps(job["params"]))  # plain YAML types
            stage["params"] = [{PARAMS_FILE: [key]}]
        stage["outs"] = job["output"] + _dataset_outs(job)
        stages[name] = stage
    return {"stages": stages}, params


def dvc_files(targets: list[str], workdir: str | Path = ".") -> tuple[dict[str, Any], dict[str, Any]]:
    """(dvc.yaml content, dvc-params.yaml content) for ``targets`` of the workflow in ``workdir``."""
    return stages_from_jobs(workflow_jobs(targets, workdir, Path(workdir) / "Snakefile"))


def write_dvc_files(content: tuple[dict[str, Any], dict[str, Any]], workdir: str | Path = ".") -> tuple[Path, Path]:
    """Write ``content`` (from :func:`dvc_files`) as dvc.yaml and dvc-params.yaml in ``workdir``; return their paths."""
    from eenet.io import atomic_path

    dvc_yaml, params = content
    header = "# Generated by `python -m eenet.pipeline.dvc` from the Snakemake job graph. Do not edit.\n"
    paths = (Path(workdir) / "dvc.yaml", Path(workdir) / PARAMS_FILE)
    for path, content in zip(paths, (dvc_yaml, params), strict=True):
        with atomic_path(path) as tmp:
            tmp.write_text(header + yaml.safe_dump(content, sort_keys=False, width=200))
    return paths


def prune_lock(workdir: str | Path = ".") -> list[str]:
    """Drop from dvc.lock the stages dvc.yaml no longer has (``dvc commit`` updates the stages it commits and leaves the
    others: a renamed or regrouped rule would keep its old entries with old checksums). Returns the dropped names."""
    from eenet.io import atomic_path

    wd = Path(workdir)
    stages = set((yaml.safe_load((wd / "dvc.yaml").read_text()) or {}).get("stages", {}))
    lock_path = wd / "dvc.lock"
    if not lock_path.is_file():
        return []
    lock = yaml.safe_load(lock_path.read_text()) or {}
    dropped = [name for name in lock.get("stages", {}) if name not in stages]
    if dropped:
        lock["stages"] = {k: v for k, v in lock["stages"].items() if k in stages}
        with atomic_path(lock_path) as tmp:
            tmp.write_text(yaml.safe_dump(lock, sort_keys=False, width=200))
    return dropped


def _run(cmd: list[str], workdir: str | Path) -> str:
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


def _dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def sync_snakemake(targets: list[str], workdir: str | Path = ".", expected: tuple[dict[str, Any], dict[str, Any]] | None = None) -> None:
    """After DVC rewrote files (commit, pull, checkout): if ``dvc status`` is clean, mark every job up to date.

    DVC writes files with new timestamps; ``snakemake --touch`` makes Snakemake's view consistent again,
    but only once DVC has confirmed by content that every artifact is what was recorded.
    ``expected``: the :func:`dvc_files` content when the caller has just computed it (saves building the
    job graph twice).
    """
    status = subprocess.run(_dvc("status"), cwd=workdir, capture_output=True, text=True)
    if status.returncode != 0 or "up to date" not in status.stdout:
        raise SystemExit(f"dvc status is not clean; not touching anything:\n{status.stdout}{status.stderr}")
    # dvc status cannot see a config edit that dvc-params.yaml does not carry yet: compare the job graph too
    if expected is None:
        expected = dvc_files(targets, workdir)
    on_disk = tuple(yaml.safe_load((Path(workdir) / name).read_text()) or {} for name in ("dvc.yaml", PARAMS_FILE))
    if expected != on_disk:
        raise SystemExit("the workflow or its config changed since the artifacts were recorded: run it, then `make record`")
    # --forceall: every job is marked done with its current parameters and code (the record Snakemake
    # compares against later), also in a fresh clone where Snakemake has no record yet
    _run([sys.executable, "-m", "snakemake", "--cores", "1", "--touch", "--forceall", *targets], workdir)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["write", "record", "pull", "checkout", "push"])
    ap.add_argument("targets", nargs="*", default=["all"])
    ap.add_argument("--workdir", default=".")
    ap.add_argument(
        "--allow-dirty", action="store_true", help="record although tracked files differ from the git commit (the record lists them)"
    )
    args = ap.parse_args(argv)
    wd = args.workdir
    if args.action == "record" and not args.allow_dirty:
        from eenet.pipeline.lineage import uncommitted_changes

        dirty = uncommitted_changes(wd)
        if dirty:
            more = f" and {len(dirty) - 5} more" if len(dirty) > 5 else ""
            raise SystemExit(
                f"record: {', '.join(dirty[:5])}{more} differ(s) from the git commit the record would name: commit first, so that "
                "the record names a commit holding exactly this code (or `make record ALLOW_DIRTY=1`: the record then lists them)"
            )
    if args.action in ("write", "record"):
        content = dvc_files(args.targets, wd)
        for path in write_dvc_files(content, wd):
            print(f"wrote {path}")
    if args.action == "record":
        _run(_dvc("commit", "--force", "--quiet"), wd)
        dropped = prune_lock(wd)
        if dropped:
            print(f"dropped {len(dropped)} stage(s) dvc.yaml no longer has from dvc.lock")
        sync_snakemake(args.targets, wd, expected=content)
        from eenet.pipeline.lineage import write_record

        print(f"recorded every artifact in dvc.lock; wrote {write_record(wd)}")
    elif args.action in ("pull", "checkout"):
        # checkout --force: a file that differs from the record (corrupt, tampered) is replaced by the recorded one
        _run(_dvc(args.action, "--quiet", *(["--force"] if args.action == "checkout" else [])), wd)
        sync_snakemake(args.targets, wd)
        print(f"dvc {args.action}: artifacts in place and up to date for Snakemake")
    elif args.action == "push":
        print(_run(_dvc("push"), wd).strip())


if __name__ == "__main__":
    main()
