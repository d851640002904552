"""Module structure: every module imports, no import cycles, no private names across modules.

The scan reads the source with :mod:`ast`, so imports inside functions (lazy imports) count
too; only the block under ``if __name__ == "__main__":`` is left out, since it runs when the
file is the program (module ``__main__``), never when the module is imported.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import andersonn_lab

PACKAGE = "andersonn_lab"
ROOT = Path(andersonn_lab.__file__).resolve().parent

KNOWN_PRIVATE_IMPORTS: set[tuple[str, str, str]] = set()
"""Private names still imported across modules whose owner is out of this change's scope
(``structures/images.py``): to be made public in the module that owns them."""

OUT_OF_SCOPE: tuple[str, ...] = ()
"""Importers whose private imports are left to their owners (being rewritten elsewhere)."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _is_main_guard(node: ast.stmt) -> bool:
    test = getattr(node, "test", None)
    return (
        isinstance(node, ast.If)
        and isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def _import_nodes(tree: ast.Module):
    """Every import statement of a module, at any depth, outside a ``__main__`` guard."""
    stack: list[ast.AST] = [node for node in tree.body if not _is_main_guard(node)]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (its ``from`` part)."""
    if node.level == 0:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _imports(module: str) -> list[tuple[str, str | None]]:
    """``(target module, imported name or None)`` for each andersonn_lab import of ``module``.

    ``from pkg import sub`` where ``pkg.sub`` is a module counts as importing ``pkg.sub``.
    """
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: list[tuple[str, str | None]] = []
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
            continue
        source = _resolve(module, node)
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            found.append((sub, None) if sub in MODULES else (source, alias.name))
    return [(target, name) for target, name in found if target.split(".")[0] == PACKAGE]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        targets = {target for target, _ in _imports(module)}
        graph[module] = {target for target in targets if target in MODULES and target != module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.add(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports(module):
    importlib.import_module(module)


def test_no_import_cycles():
    cycles = [sorted(c) for c in _cycles(_graph())]
    assert not cycles, f"import cycles among andersonn_lab modules: {cycles}"


def test_no_private_names_imported_across_modules():
    found = []
    for module in MODULES:
        if module.startswith(OUT_OF_SCOPE):
            continue
        for target, name in _imports(module):
            if target == module:
                continue
            private_module = any(
                _is_private(part) for part in target.split(".")
            ) and not module.startswith(target.rpartition(".")[0] + ".")
            if (name is not None and _is_private(name)) or private_module:
                found.append((module, target, name))
    unexpected = sorted(set(found) - KNOWN_PRIVATE_IMPORTS)
    assert not unexpected, f"private names imported across modules: {unexpected}"


def test_the_scan_sees_lazy_imports_and_ignores_the_main_guard():
    targets = {target for target, _ in _imports("andersonn_lab.deq.cli")}
    assert "andersonn_lab.deq.distributed" in targets  # imported inside run_train
    assert "andersonn_lab.deq.cli" not in {t for t, _ in _imports("andersonn_lab.deq.distributed")}
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
