"""docs/recipes.md's configuration table, written from the config schema (``workflow/schemas/config.schema.yaml``):
one row per key of a benchmark (``split.val_size`` for a key of a block), with its type, its default and the
schema's ``description``. :mod:`eenet.pipeline.generated` puts it between two marker lines of the document,

    <!-- generated: config-table -->
    ...
    <!-- end generated -->

and its ``check`` fails when the table there differs, so a default changed in the schema changes the document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["BEGIN", "END", "bench_block", "config_table", "fill", "type_of", "default_of"]

BEGIN = re.compile(r"^<!-- generated: (?P<what>[a-z][a-z-]*)\b.*-->\s*$")
"""The first marker line; ``what`` names the block (:func:`fill`)."""
END = "<!-- end generated -->"
HEADER = ["| key (per benchmark) | type | default | meaning |", "|---|---|---|---|"]

_DOC_LINK = re.compile(r"\bdocs/([\w-]+\.md)(#[\w-]+)?")
_CODE = re.compile(r"(`[^`]*`)")
_BOUNDS = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}


def bench_block(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The schema of one entry of ``benchmarks:``."""
    return schema["properties"]["benchmarks"]["additionalProperties"]


def _keys(block: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    """``(dotted key, its schema, required)`` of every key of ``block`` in the schema's order, a block's own row (where
    it has a description) before its keys."""
    required = set(block.get("required", []))
    for name, prop in block.get("properties", {}).items():
        key = prefix + name
        if "properties" not in prop or "description" in prop:
            yield key, prop, name in required
        if "properties" in prop:
            yield from _keys(prop, key + ".")


def _value(v: Any) -> str:
    """A default as YAML writes it in a config: ``null``, ``true``, ``[50, 100]``, ``auto``."""
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return v if isinstance(v, str) else json.dumps(v)


def _code(v: Any) -> str:
    return f"`{_value(v)}`"


def type_of(prop: Mapping[str, Any]) -> str:
    """A key's type in words: ``integer ≥ 1``, ``integer or null``, ``list of integer``, ``\\`sgd\\` | \\`adamw\\```
    (an enum), the alternatives of an ``anyOf`` joined by ``or``."""
    if "anyOf" in prop:
        return " or ".join(type_of(alt) for alt in prop["anyOf"])
    if "enum" in prop:
        return " | ".join(_code(v) for v in prop["enum"])
    if "pattern" in prop:
        return f"string matching `{prop['pattern']}`"
    types = prop.get("type", [])
    words = []
    for t in types if isinstance(types, list) else [types]:
        if t == "array" and "items" in prop:
            words.append(f"list of {type_of(prop['items'])}")
        elif t == "array":
            words.append("list")
        else:
            words.append(t)
    bounds = ", ".join(f"{sign} {_value(prop[k])}" for k, sign in _BOUNDS.items() if k in prop)
    if bounds:  # numbers only: applied to the number, not to null
        words = [f"{w} {bounds}" if w in ("integer", "number") else w for w in words]
    return " or ".join(words)


def default_of(prop: Mapping[str, Any], required: bool) -> str:
    """A key's default as a config writes it; ``required``, ``all`` (a list whose default is every allowed value),
    blank for a block of keys, ``—`` for none."""
    if required:
        return "required"
    if "default" not in prop or "properties" in prop:
        return "" if "properties" in prop else "—"
    default = prop["default"]
    if isinstance(default, list) and default and default == prop.get("items", {}).get("enum"):
        return "all"
    return _code(default)


def _markdown(text: str) -> str:
    """Schema prose as a table cell: one line, ``docs/<file>.md#anchor`` as a link (the table is in docs/), and
    what Markdown would read as markup (``<...>``, ``*``, a word-initial ``_``) escaped outside code spans."""
    parts = _CODE.split(" ".join(text.split()))
    for i in range(0, len(parts), 2):  # outside code spans
        p = parts[i].replace("<", "&lt;").replace(">", "&gt;").replace("*", r"\*")
        p = re.sub(r"(?<!\w)_|_(?!\w)", r"\\_", p)
        parts[i] = _DOC_LINK.sub(lambda m: f"[{m[1]}]({m[1]}{m[2] or ''})", p)
    return "".join(parts).replace("|", r"\|")


def config_table(schema: Mapping[str, Any]) -> list[str]:
    """The Markdown table of a benchmark's keys: key, type, default, meaning (the schema's description)."""
    lines = list(HEADER)
    for key, prop, required in _keys(bench_block(schema)):
        cells = [f"`{key}`", type_of(prop).replace("|", r"\|"), default_of(prop, required), _markdown(prop.get("description", ""))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def fill(text: str, blocks: Mapping[str, list[str]]) -> str:
    """``text`` with the lines between each ``<!-- generated: <what> ... -->`` line and the next ``<!-- end generated -->``
    replaced by ``blocks[what]``; the marker lines stay."""
    out: list[str] = []
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        out.append(lines[i])
        m = BEGIN.match(lines[i].rstrip("\n"))
        i += 1
        if not m:
            continue
        if m["what"] not in blocks:
            raise ValueError(f"unknown generated block {m['what']!r} in: {lines[i - 1].strip()}")
        end = next((j for j in range(i, len(lines)) if lines[j].strip() == END), None)
        if end is None:
            raise ValueError(f"{lines[i - 1].strip()} has no {END} line after it")
        out += [line + "\n" for line in blocks[m["what"]]]
        i = end
    return "".join(out)
