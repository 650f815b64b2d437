"""The plugin API (``portal.api``) is the only part of the portal that plugins import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from portal import api

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_SOURCES = sorted(
    path for folder in ("plugins", "themes") for path in (ROOT / folder).glob("*/sinetti_*/**/*.py")
)


def portal_imports(path: Path) -> list[str]:
    """Every module of the ``portal`` package that ``path`` imports, wherever the import is."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "portal":  # from portal import x: x is a module or a name
                names = [f"portal.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [name for name in names if name == "portal" or name.startswith("portal.")]
    return found


def test_there_are_built_in_plugins_to_check():
    assert len(PLUGIN_SOURCES) >= 8
    assert {path.parts[-3] for path in PLUGIN_SOURCES} >= {"devbox", "storage_s3", "valtori"}


@pytest.mark.parametrize("path", PLUGIN_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_built_in_plugins_import_only_the_plugin_api(path):
    assert [name for name in portal_imports(path) if name != "portal.api"] == []


def test_the_import_check_sees_every_way_of_importing_the_core(tmp_path):
    source = tmp_path / "plugin.py"
    source.write_text(
        "import portal.models\n"
        "from portal import db\n"
        "from portal.api import hookimpl\n"
        "def f():\n    from portal.services import outbox\n",
        encoding="utf-8",
    )

    assert portal_imports(source) == [
        "portal.models",
        "portal.db",
        "portal.api",
        "portal.services",
    ]


def test_every_name_the_api_promises_exists():
    missing = [name for name in api.__all__ if not hasattr(api, name)]

    assert missing == []
    assert api.API_VERSION.split(".")[0] == "1"
