"""The structure of the core: its modules, the imports between them (the arrows) and any
import cycle. ``tests/unit/test_structure.py`` holds the core to "no cycle"; this prints the
picture for a reader or a review.

    python tools/structure.py [ROOT]   summary of ROOT/portal (default: this checkout)
    python tools/structure.py --layers [ROOT]   also the arrows between the layers

An arrow is an import the module runs (at import time or in a function body); imports under
``if TYPE_CHECKING:`` are not arrows.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import the module runs (at import time or in a function), not those under
    ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _is_module(package: Path, path: Path) -> bool:
    """A module of the core; not the templates ``sinetti new-plugin`` fills in (they are code
    of packages yet to be written)."""
    inside = path.relative_to(package).parts
    return not (inside[0] == "scaffold" and len(inside) > 2)


def import_graph(root: Path = HERE) -> dict[str, set[str]]:
    """Module → the modules of ``portal`` it imports."""
    package = root / "portal"
    modules = {
        module_name(root, path): path for path in package.rglob("*.py") if _is_module(package, path)
    }
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in targets:
                # ``from portal.services import compose`` names a module; ``from portal.x
                # import y`` names something in portal.x: the longest module name is meant.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target != "portal":
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                found.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def layer(module: str) -> str:
    """``portal.services.compose`` → ``services``; a top-level module is its own layer."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def summary(root: Path, layers: bool) -> str:
    graph = import_graph(root)
    lines = [
        f"modules: {len(graph)}",
        f"arrows: {sum(len(targets) for targets in graph.values())}",
        f"cycles: {len(cycles(graph))}",
    ]
    lines += ["  " + " → ".join(cycle) for cycle in cycles(graph)]
    if layers:
        between = Counter(
            (layer(source), layer(target))
            for source, targets in graph.items()
            for target in targets
            if layer(source) != layer(target)
        )
        lines.append("arrows between layers:")
        lines += [f"  {a} → {b}: {n}" for (a, b), n in sorted(between.items())]
    return "\n".join(lines)


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    print(summary(Path(arguments[0]) if arguments else HERE, "--layers" in sys.argv))
