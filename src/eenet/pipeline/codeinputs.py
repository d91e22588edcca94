"""The code a workflow script runs: the script, its sibling helper modules and every package module it
imports, transitively -- read from the ``import`` statements, so no list is kept by hand.

The workflow (``rules/common.smk``) makes these files the inputs of each rule, so that editing a module
re-runs exactly the rules whose scripts import it, directly or through another module. Imports inside
functions count too (they run when the function does). Standard library only: the Snakefile imports this
module before anything is installed into a job's environment. Imports under ``if TYPE_CHECKING:`` are
left out: they never run.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

__all__ = ["imported_modules", "module_path", "code_files"]


def module_path(src: Path, module: str) -> Path | None:
    """The file of ``module`` (dotted name) under the source root ``src``: a ``.py`` file or a package's
    ``__init__.py``; ``None`` when it is not there (another distribution's module)."""
    base = src.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _resolve(node: ast.ImportFrom, module: str | None, is_package: bool) -> str | None:
    """The absolute module an ``from ... import`` statement reads from (``None`` for a relative import in a script)."""
    if node.level == 0:
        return node.module
    if module is None:
        return None
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of ``tree`` that can run: not those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return found


def imported_modules(path: Path, module: str | None, is_package: bool = False) -> frozenset[str]:
    """Every module named by an import statement of ``path`` (``module`` = its dotted name, ``None`` for a script).

    ``from pkg import name`` yields ``pkg`` and ``pkg.name`` (which may be a submodule; callers keep the
    names that are files).
    """
    return _imports_of_source(path.read_text(), str(path), module, is_package)


@cache  # keyed by the source text: an edited file is parsed again
def _imports_of_source(source: str, filename: str, module: str | None, is_package: bool) -> frozenset[str]:
    out: set[str] = set()
    for node in _import_nodes(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, module, is_package)
            if base:
                out.add(base)
                out.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return frozenset(out)


def code_files(script: str | Path, src: str | Path, package: str = "eenet") -> list[Path]:
    """The script, the helper modules beside it that it imports, and every module of ``package`` (under the
    source root ``src``) it imports, transitively, with the ``__init__.py`` of every package on the way
    (Python runs them first). Sorted, absolute paths."""
    script, src = Path(script).resolve(), Path(src).resolve()
    files = {script}
    todo: list[tuple[Path, str | None]] = [(script, None)]
    seen: set[str] = set()
    while todo:
        path, module = todo.pop()
        for name in imported_modules(path, module, path.name == "__init__.py"):
            if module is None and "." not in name and (script.parent / f"{name}.py").is_file():
                files.add(script.parent / f"{name}.py")  # a helper beside the script (e.g. _eenet_path)
                continue
            if name != package and not name.startswith(package + "."):
                continue
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # the module and every package above it
                prefix = ".".join(parts[:i])
                found = module_path(src, prefix)
                if found is not None and prefix not in seen:
                    seen.add(prefix)
                    files.add(found)
                    todo.append((found, prefix))
    return sorted(files)
