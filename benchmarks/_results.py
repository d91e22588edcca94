"""The one way the benchmark scripts append their figures to benchmarks/RESULTS.md: a titled section with the
date, the commit and the command that produced it, then the Markdown table."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = ["Snakefile", "rules", "workflow", "src", "profiles", "envs", "config", ".gitignore"]
"""What a fresh copy of the workflow needs (:func:`copy_workflow`)."""
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ ")
HEADER = "# Benchmark results\n\nEach section is appended by a script in benchmarks/ (the command is in it).\n"


def append_section(path: str | Path, title: str, note: str, table: list[str]) -> str:
    """Append ``## title — date, commit``, the command line of the running script with ``note``, and ``table``
    (Markdown lines) to ``path`` (created with a header when missing); return the text appended."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    command = " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    text = (
        f"\n## {title} — {datetime.now(timezone.utc):%Y-%m-%d}, commit {commit or '?'}\n\n`{command}`: {note}\n\n" + "\n".join(table) + "\n"
    )
    path = Path(path)
    if not path.exists():
        path.write_text(HEADER)
    with open(path, "a") as fh:
        fh.write(text)
    return text


def copy_workflow(dest: Path) -> Path:
    """A fresh copy of the workflow (:data:`WORKFLOW`) in ``dest``, so that a benchmark never reuses or touches the
    repository's results/; returns ``dest``."""
    for name in WORKFLOW:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    return dest


def log_stamps(log: Path) -> list[datetime]:
    """The times of a rule log's time-stamped lines (eenet.pipeline.logs writes ``YYYY-MM-DD HH:MM:SS,mmm`` first)."""
    return [datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S") for line in log.read_text().splitlines() if (m := STAMP.match(line))]


def job_seconds(workdir: Path, output: str | Path) -> float | None:
    """Wall seconds of the Snakemake job that made ``output`` (a path relative to ``workdir``), from the start and end
    times Snakemake records in ``.snakemake/metadata`` (Python's start-up included); None where it holds none."""
    name = base64.urlsafe_b64encode(str(output).encode()).decode()
    path = workdir / ".snakemake" / "metadata" / name
    if not path.is_file():
        return None
    meta = json.loads(path.read_text())
    start, end = meta.get("starttime"), meta.get("endtime")
    return end - start if start is not None and end is not None else None


def rule_seconds(log: Path) -> float:
    """Seconds between the first and the last time-stamped line of a rule's log."""
    stamps = log_stamps(log)
    return (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else 0.0
