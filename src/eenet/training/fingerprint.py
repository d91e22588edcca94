"""What a checkpoint must match to be resumed: the recipe and the code that shapes the weights.

The code is read as Python's syntax tree, without what cannot change a weight: comments (not in the tree),
docstrings, the message of a ``raise`` (an error stops the run) and logging calls. So re-wording a message or a
docstring resumes a run; a change to the loss, a model or the data pipeline starts it again.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["normalised_source", "code_digest", "training_fingerprint"]

_LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})


class _Strip(ast.NodeTransformer):
    """Drops docstrings, ``raise`` messages and logging calls (``log.info(...)``, ``logger.warning(...)``, ``print``)."""

    def _body(self, body: list[ast.stmt]) -> list[ast.stmt]:
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            body = body[1:]
        return body or [ast.Pass()]

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            node.body = self._body(node.body)
        return super().generic_visit(node)

    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        if isinstance(node.exc, ast.Call):
            node.exc.args, node.exc.keywords = [], []
        return node

    def visit_Expr(self, node: ast.Expr) -> ast.AST | None:
        call = node.value
        if isinstance(call, ast.Call):
            f = call.func
            if (isinstance(f, ast.Attribute) and f.attr in _LOG_METHODS) or (isinstance(f, ast.Name) and f.id == "print"):
                return None
        return self.generic_visit(node)


def normalised_source(source: str) -> str:
    """``source`` as the weights see it: its syntax tree without comments, docstrings, ``raise`` messages and
    logging calls, dumped as text."""
    tree = _Strip().visit(ast.parse(source))
    return ast.dump(ast.fix_missing_locations(tree), annotate_fields=False, include_attributes=False)


def code_digest(files: Iterable[str | Path], root: str | Path | None = None) -> str:
    """sha256 over the normalised source of ``files`` (``.py``; other files by content), each named by its path
    relative to ``root`` (so that the same code in another checkout has the same digest); order does not matter."""
    h = hashlib.sha256()
    for f in sorted(Path(f) for f in files):
        name = f.relative_to(root).as_posix() if root is not None else f.name
        text = normalised_source(f.read_text()) if f.suffix == ".py" else hashlib.sha256(f.read_bytes()).hexdigest()
        h.update(f"{name}\0{hashlib.sha256(text.encode()).hexdigest()}\n".encode())
    return h.hexdigest()


def training_fingerprint(recipe: dict[str, Any], code: str) -> str:
    """The fingerprint of a training run: the recipe (architecture, split, training keys, data digest) and
    ``code``, the :func:`code_digest` of the modules that train. A checkpoint written by other code -- a head that
    pools differently with the same parameters, say -- is not resumed."""
    return hashlib.sha256(json.dumps({**recipe, "code": code}, sort_keys=True).encode()).hexdigest()
