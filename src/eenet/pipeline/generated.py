"""Facts the catalog declares, written where the workflow needs them: the config schema's enums and defaults of
methods, combiners and architectures (``workflow/schemas/config.schema.yaml``, the lines ending in
``# generated: <what>``). One command writes them, a test fails when they are stale:

    python -m eenet.pipeline.generated write     # after adding a method, combiner or architecture to eenet.catalog
    python -m eenet.pipeline.generated check     # exit 1 and the stale lines when a file differs

Standard library only.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from eenet.catalog import ARCHITECTURES, COMBINERS, METHODS

__all__ = ["GENERATED", "SCHEMA", "render", "stale", "main"]

SCHEMA = Path("workflow/schemas/config.schema.yaml")
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


def stale(root: Path) -> list[str]:
    """The generated lines of the files under ``root`` that differ from what :func:`render` writes."""
    path = root / SCHEMA
    old = path.read_text().splitlines()
    new = render(path.read_text()).splitlines()
    return [f"{SCHEMA}:{i + 1}: {a.strip()}" for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in (["write"], ["check"]):
        print("usage: python -m eenet.pipeline.generated write|check", file=sys.stderr)
        return 2
    root = Path.cwd()
    lines = stale(root)
    if args == ["check"]:
        for line in lines:
            print(f"stale: {line} (python -m eenet.pipeline.generated write)", file=sys.stderr)
        return 1 if lines else 0
    path = root / SCHEMA
    path.write_text(render(path.read_text()))
    print(f"{SCHEMA}: {len(lines)} line(s) written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
