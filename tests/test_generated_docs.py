"""docs/recipes.md's configuration table is written from the config schema by `python -m eenet.pipeline.generated
write` (eenet.pipeline.configdoc): the committed table is current, and a default changed in the schema is found stale
in the document and written into its table."""

from __future__ import annotations

import shutil

import pytest
import yaml
from helpers import REPO

from eenet.pipeline.configdoc import bench_block, config_table, fill
from eenet.pipeline.generated import RECIPES, SCHEMA, main, stale


def _row(text: str, key: str) -> str:
    """The table row of ``key`` in a document's text."""
    (row,) = [line for line in text.splitlines() if line.startswith(f"| `{key}` |")]
    return row


def test_the_config_table_is_current_and_names_every_key():
    assert stale(REPO) == []
    text = (REPO / RECIPES).read_text()
    schema = yaml.safe_load((REPO / SCHEMA).read_text())
    for key in ("dataset", "max_length", "train.epochs", "budgets.unit", "methods", "eenet.restarts"):
        assert _row(text, key)
    for name, prop in bench_block(schema)["properties"].items():  # every key has a meaning, none left blank
        assert prop.get("description"), name
        assert _row(text, name).rstrip(" |").split(" | ")[-1], name
    assert "| `max_length` | integer ≥ 8 | `128` |" in text


def test_a_changed_schema_default_changes_the_table(tmp_path, monkeypatch):
    for rel in (SCHEMA, RECIPES):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, tmp_path / rel)
    schema = tmp_path / SCHEMA
    old = "max_length: {type: integer, minimum: 8, default: 128,"
    assert old in schema.read_text()
    schema.write_text(schema.read_text().replace(old, old.replace("128", "256")))
    found = stale(tmp_path)
    assert len(found) == 1 and found[0].startswith(f"{RECIPES}:") and "`max_length`" in found[0] and "`128`" in found[0]
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 1
    assert main(["write"]) == 0 and main(["check"]) == 0 and stale(tmp_path) == []
    text = (tmp_path / RECIPES).read_text()
    assert _row(text, "max_length").startswith("| `max_length` | integer ≥ 8 | `256` |")
    # what lies outside the markers is kept as it was
    before = (REPO / RECIPES).read_text()
    assert text.split("<!-- generated:")[0] == before.split("<!-- generated:")[0]
    assert text.split("<!-- end generated -->")[1] == before.split("<!-- end generated -->")[1]


def test_a_block_without_its_end_marker_or_of_an_unknown_name_is_refused():
    table = config_table(yaml.safe_load((REPO / SCHEMA).read_text()))
    assert fill("a\n<!-- generated: config-table -->\nold\n<!-- end generated -->\nb\n", {"config-table": table}).splitlines() == [
        "a", "<!-- generated: config-table -->", *table, "<!-- end generated -->", "b",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="no <!-- end generated --> line"):
        fill("<!-- generated: config-table -->\nold\n", {"config-table": table})
    with pytest.raises(ValueError, match="unknown generated block 'other'"):
        fill("<!-- generated: other -->\n<!-- end generated -->\n", {"config-table": table})
