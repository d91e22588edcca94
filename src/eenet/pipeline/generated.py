"""Facts declared once, written where the workflow and the documents need them: the config schema's enums and
defaults of methods, combiners and architectures (``workflow/schemas/config.schema.yaml``, the lines ending in
``# generated: <what>``) from :mod:`eenet.catalog`, and docs/recipes.md's configuration table (between
``<!-- generated: config-table -->`` and ``<!-- end generated -->``) from the schema (:mod:`eenet.pipeline.configdoc`).
One command writes them, a test fails when they are stale:

    python -m eenet.pipeline.generated write     # after adding a method, combiner or architecture to eenet.catalog,
                                                 # or after editing a key, default or description of the schema
    python -m eenet.pipeline.generated check     # exit 1 and the stale lines when a file differs

Standard library and PyYAML.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from eenet.catalog import ARCHITECTURES, COMBINERS, METHODS
from eenet.pipeline.configdoc import config_table, fill

__all__ = ["GENERATED", "SCHEMA", "RECIPES", "render", "render_doc", "written", "stale", "main"]

SCHEMA = Path("workflow/schemas/config.schema.yaml")
RECIPES = Path("docs/recipes.md")
SHOWN = 20  # stale lines printed by ``check``
POLICIES = [m for m in METHODS if m != "static"]  # static: a single exit, added to every figure, never configured

GENERATED: dict[str, Callable[[], list[str]]] = {
    "methods": lambda: POLICIES,  # what a benchmark may name, and its default: every policy
    "combiners": lambda: list(COMBINERS),
    "architectures": lambda: list(ARCHITECTURES),
}
"""``<what>`` of a ``# generated: <what>`` line -> the list its ``[...]`` holds, from :mod:`eenet.catalog`."""

_LINE = re.compile(r"^(?P<head>.*?)\[(?P<items>[^\]]*)\](?P<tail>.*#\s*generated:\s*(?P<what>[a-z_]+)\s*)$")


def render(text: str) -> str:
    """``text`` with every ``[...]`` of a ``# generated: <what>`` line written from :data:`GENERATED`."""
    out = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        m = _LINE.match(body)
        if m:
            if m["what"] not in GENERATED:
                raise ValueError(f"unknown generated list {m['what']!r} in: {body.strip()}")
            body = f"{m['head']}[{', '.join(GENERATED[m['what']]())}]{m['tail']}"
            line = body + ("\n" if line.endswith("\n") else "")
        out.append(line)
    return "".join(out)


def render_doc(text: str, schema_text: str) -> str:
    """``text``, a Markdown document, with its generated blocks written from the schema ``schema_text`` (read after
    :func:`render`, so that one ``write`` brings both files up to date)."""
    schema = yaml.safe_load(render(schema_text))
    return fill(text, {"config-table": config_table(schema)})


def written(root: Path) -> dict[Path, tuple[str, str]]:
    """Each generated file under ``root`` -> (its text, the text :func:`render` / :func:`render_doc` write). The
    schema must be there; a copy without docs/recipes.md (a test's) is checked for the schema alone."""
    schema_text = (root / SCHEMA).read_text()
    files = {SCHEMA: (schema_text, render(schema_text))}
    if (root / RECIPES).is_file():
        doc = (root / RECIPES).read_text()
        files[RECIPES] = (doc, render_doc(doc, schema_text))
    return files


def stale(root: Path) -> list[str]:
    """The lines of the generated files under ``root`` that differ from what would be written: ``path:line: text``
    (the line as it is; ``(missing)`` and the line to be written where one is missing)."""
    found = []
    for path, (old_text, new_text) in written(root).items():
        old, new = old_text.splitlines(), new_text.splitlines()
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
            if op in ("replace", "delete"):
                found += [f"{path}:{i + 1}: {old[i].strip()}" for i in range(i1, i2)]
            elif op == "insert":
                found += [f"{path}:{i1 + 1}: (missing) {new[j].strip()}" for j in range(j1, j2)]
    return found


def main(argv: list[str] | None = None) -> int:
    """``write`` the generated files under the current directory, or ``check`` them (exit 1 when one is stale)."""
    args = sys.argv[1:] if argv is None else argv
    if args not in (["write"], ["check"]):
        print("usage: python -m eenet.pipeline.generated write|check", file=sys.stderr)
        return 2
    root = Path.cwd()
    if not (root / RECIPES).is_file():
        print(f"{RECIPES} is missing: run from the repository's root", file=sys.stderr)
        return 2
    lines = stale(root)
    if args == ["check"]:
        for line in lines[:SHOWN]:
            print(f"stale: {line}", file=sys.stderr)
        if lines:
            more = f" (and {len(lines) - SHOWN} more lines)" if len(lines) > SHOWN else ""
            print(f"{len(lines)} stale line(s){more}: python -m eenet.pipeline.generated write", file=sys.stderr)
        return 1 if lines else 0
    for path, (old, new) in written(root).items():
        if new != old:
            (root / path).write_text(new)
        print(f"{path}: {sum(line.startswith(f'{path}:') for line in lines)} line(s) written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
