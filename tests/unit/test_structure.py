"""The structure of the core: imports point one way only (no cycle, not even one hidden in a
function body); only type-checking imports may point back."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _load_tool() -> Any:
    spec = importlib.util.spec_from_file_location(
        "sinetti_structure_tool", ROOT / "tools" / "structure.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOL = _load_tool()  # tools/structure.py: the same graph a reader prints
import_graph = TOOL.import_graph
cycles = TOOL.cycles


def test_the_import_graph_is_read_from_the_sources():
    graph = import_graph()
    assert "portal.services.access_codes" in graph["portal.verification.codes"]
    assert "portal.verification.base" in graph["portal.services.access_codes"]


def test_the_core_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_a_cycle_would_be_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_the_summary_names_modules_arrows_and_cycles():
    text = TOOL.summary(ROOT, layers=True)

    assert text.startswith("modules: ")
    assert "cycles: 0" in text
    assert "views → services" in text


def test_services_import_nothing_of_quarts_requests_sessions_or_templates():
    forbidden = {"request", "session", "render_template", "render_template_string", "g"}
    found = []
    for path in sorted((ROOT / "portal" / "services").glob("*.py")):
        for node in TOOL.runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("quart"):
                found += [f"{path.name}: {a.name}" for a in node.names if a.name in forbidden]
            if isinstance(node, ast.ImportFrom) and node.module == "portal.web":
                found.append(f"{path.name}: portal.web")

    assert found == []
