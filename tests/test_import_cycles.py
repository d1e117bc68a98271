"""No import cycles among the modules of src/wirebridge.

Every module is parsed with `ast` (nothing is imported), and each import of a wirebridge module
becomes an edge: absolute (`import wirebridge.x`, `from wirebridge.x import y`) and relative
(`from .x import y`, `from . import x`, `from .. import y`) alike, at module level or inside a
function (a lazy import hides a cycle, it does not remove it). `from pkg import name` points at
the submodule `pkg.name` when there is one, else at the package's `__init__`. Imports under
`if TYPE_CHECKING:` are not edges: they never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "wirebridge"


@dataclass(frozen=True)
class Edge:
    target: str
    line: int


def module_names(package: Path) -> dict[str, Path]:
    """Dotted name -> file, for every module of the package (`__init__.py` names the package)."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, except those in the body of an `if TYPE_CHECKING:`."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def edges_of(name: str, path: Path, modules: dict[str, Path]) -> list[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[Edge] = []
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            out += [Edge(a.name, node.lineno) for a in node.names if a.name in modules]
            continue
        if node.level:
            base_parts = package.split(".")
            if node.level > 1:
                base_parts = base_parts[: -(node.level - 1)]
            base = ".".join([*base_parts, *([node.module] if node.module else [])])
        else:
            base = node.module or ""
        if base not in modules:
            continue
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            out.append(Edge(sub if sub in modules else base, node.lineno))
    return [e for e in out if e.target != name]


def import_graph(package: Path) -> dict[str, list[Edge]]:
    modules = module_names(package)
    return {name: edges_of(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, list[Edge]]) -> list[list[tuple[str, int]]]:
    """One cycle per strongly connected component with more than one module, as
    [(module, line of its import of the next module), ...]."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan; the graph is small, recursion is fine
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for edge in graph[v]:
            w = edge.target
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph: dict[str, list[Edge]], component: set[str]) -> list[tuple[str, int]]:
    """A shortest cycle through the component's first module (breadth-first, inside it)."""
    start = min(component)
    came_from: dict[str, tuple[str, int]] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for edge in graph[v]:
                if edge.target not in component or edge.target in came_from:
                    continue
                came_from[edge.target] = (v, edge.line)
                following.append(edge.target)
        if start in came_from:
            break
        frontier = following
    path: list[tuple[str, int]] = []
    node = start
    while True:
        parent, line = came_from[node]
        path.append((parent, line))
        node = parent
        if node == start:
            break
    return path[::-1]


def describe(cycle: list[tuple[str, int]], modules: dict[str, Path], root: Path = ROOT) -> str:
    steps = []
    for i, (name, line) in enumerate(cycle):
        following = cycle[(i + 1) % len(cycle)][0]
        where = modules[name].relative_to(root).as_posix()
        steps.append(f"  {name} ({where}:{line}) imports {following}")
    return "\n".join(steps)


def test_no_import_cycles_in_wirebridge() -> None:
    modules = module_names(PACKAGE)
    cycles = find_cycles(import_graph(PACKAGE))
    report = "\n\n".join(describe(c, modules) for c in cycles)
    assert not cycles, f"{len(cycles)} import cycle(s) in src/wirebridge:\n{report}"


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_the_detector_resolves_relative_and_package_imports(tmp_path: Path) -> None:
    package = _write(
        tmp_path,
        {
            "pkg/__init__.py": "from .client import Client\n__version__ = '1'\n",
            "pkg/client.py": "from . import transport\n",
            "pkg/transport.py": "from pkg import __version__\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/a.py": "def f():\n    from ..sub import b\n",
            "pkg/sub/b.py": "import pkg.sub.a\n",
            "pkg/sub/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from .d import X\nelse:\n    X = None\n",
            "pkg/sub/d.py": "from .c import X\n",
        },
    )
    graph = import_graph(package)
    assert graph["pkg.transport"] == [Edge("pkg", 1)]
    assert graph["pkg.client"] == [Edge("pkg.transport", 1)]
    assert graph["pkg.sub.a"] == [Edge("pkg.sub.b", 2)]
    assert graph["pkg.sub.c"] == []
    cycles = sorted(sorted(name for name, _ in c) for c in find_cycles(graph))
    assert cycles == [["pkg", "pkg.client", "pkg.transport"], ["pkg.sub.a", "pkg.sub.b"]]
    text = "\n".join(describe(c, module_names(package), tmp_path) for c in find_cycles(graph))
    assert "pkg.transport (pkg/transport.py:1) imports pkg\n" in text
    assert "pkg.sub.a (pkg/sub/a.py:2) imports pkg.sub.b" in text
