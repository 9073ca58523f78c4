"""The package's own import graph, read from the source without importing anything.

A module's imports are its ``import`` and ``from ... import`` statements anywhere in the file,
those inside functions (lazy imports) included, plus every string literal that names a module
of the package (``"lowspike.models.scnn"``, or ``"lowspike.models.scnn:SCNN"``): a registry that
loads its entries on use imports them too. Relative imports are resolved; ``from pkg import x``
is an edge to the module ``pkg.x`` when there is one, else to ``pkg``. Left out: statements
under ``if __name__ == "__main__":`` (they belong to the script run, not to the module) and
under ``if TYPE_CHECKING:`` (annotations, never run), and the implicit import of a module's
parent packages.

:func:`closure` gives what a stage depends on (``dvc.yaml``'s code deps are generated from it by
:mod:`lowspike.dvcyaml`), :func:`cycles` what the tests refuse (string references included).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PACKAGE = "lowspike"
_MODULE_STRING = re.compile(rf"^({PACKAGE}(?:\.\w+)+)(?::\w+)?$")


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``line``; ``lazy`` when the statement is inside a function
    (or the module is only named in a string); ``named`` when it is only named in a string (a
    registry entry loaded on use)."""

    source: str
    target: str
    line: int
    lazy: bool
    named: bool = False


@lru_cache(maxsize=None)
def package_modules(src: Path) -> dict[str, Path]:
    """Every module of the package under ``src`` (the folder holding ``lowspike/``): dotted name -> file
    (listed once per process)."""
    modules = {}
    for path in sorted((src / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_main_guard(node: ast.stmt) -> bool:
    test = getattr(node, "test", None)
    return (isinstance(node, ast.If) and isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__" and any(isinstance(c, ast.Constant) and c.value == "__main__"
                                                     for c in test.comparators))


def _is_type_checking_guard(node: ast.stmt) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _statements(tree: ast.Module):
    """``(node, lazy)`` for every node of the module outside its ``__main__`` guard and its
    ``if TYPE_CHECKING:`` blocks (annotations only, never run)."""
    stack = [(node, False) for node in reversed(tree.body) if not _is_main_guard(node)
             and not _is_type_checking_guard(node)]
    while stack:
        node, lazy = stack.pop()
        yield node, lazy
        inner = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        stack.extend((child, inner) for child in reversed(list(ast.iter_child_nodes(node)))
                     if not _is_type_checking_guard(child))


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def module_edges(name: str, path: Path, modules: dict[str, Path]) -> list[Edge]:
    """The imports of module ``name`` (file ``path``) that land in ``modules``."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    edges = []

    def add(target: str, node: ast.AST, lazy: bool, named: bool = False) -> None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            edges.append(Edge(name, target, node.lineno, lazy, named))

    for node, lazy in _statements(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node, lazy)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, is_package, node.level, node.module)
            for alias in node.names:
                add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base, node, lazy)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = _MODULE_STRING.match(node.value)
            if match and match.group(1) in modules:
                add(match.group(1), node, True, named=True)
    return edges


@lru_cache(maxsize=None)
def import_graph(src: Path) -> dict[str, tuple[Edge, ...]]:
    """``{module: its edges}`` for every module of the package under ``src``."""
    modules = package_modules(src)
    return {name: tuple(module_edges(name, path, modules)) for name, path in modules.items()}


def script_imports(script: Path, src: Path) -> list[str]:
    """The package modules a script outside the package (a stage) imports."""
    return sorted({edge.target for edge in module_edges(script.stem, script, package_modules(src))})


@lru_cache(maxsize=None)
def _edges_of(src: Path, module: str) -> tuple[Edge, ...]:
    modules = package_modules(src)
    return tuple(module_edges(module, modules[module], modules))


def closure(roots: list[str], src: Path, named: bool = False) -> list[str]:
    """Every module reachable from ``roots`` through import statements (lazy ones included), and
    with ``named`` through the registry entries named in strings too; sorted. Only the modules
    reached are parsed."""
    src = src.resolve()
    modules = package_modules(src)
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        module = stack.pop()
        if module in seen or module not in modules:
            continue
        seen.add(module)
        stack.extend(edge.target for edge in _edges_of(src, module) if named or not edge.named)
    return sorted(seen)


def module_file(module: str, src: Path) -> Path:
    """The source file of a package module, relative to ``src``'s parent (``src/lowspike/x.py``)."""
    return package_modules(src)[module].relative_to(src.parent)


_SOURCE_BESIDE = re.compile(r"""["']([\w.-]+\.c)["']""")


def kernel_sources(module: str, src: Path) -> list[Path]:
    """The C sources a module compiles (:mod:`lowspike.native`): files beside it named in its
    source as a string literal (``Path(__file__).with_name("leaky_kernels.c")``), relative to
    ``src``'s parent; sorted."""
    path = package_modules(src.resolve())[module]
    names = sorted(set(_SOURCE_BESIDE.findall(path.read_text())))
    return [(path.parent / name).relative_to(src.resolve().parent) for name in names
            if (path.parent / name).is_file()]


def cycles(src: Path) -> list[list[str]]:
    """The import cycles of the package: strongly connected components of more than one module
    (Tarjan's algorithm), each as a sorted list."""
    graph = {name: sorted({e.target for e in edges}) for name, edges in import_graph(src.resolve()).items()}
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found
