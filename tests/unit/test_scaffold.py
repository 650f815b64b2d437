"""``sinetti new-plugin``: each kind of plugin is generated, made importable with its entry
point (as ``pip install -e`` would, without a build or the network), and must pass its own
test inside a real portal and show up in ``sinetti plugins``.

"Installing" is a ``.dist-info`` folder with the ``entry_points.txt`` that the generated
``pyproject.toml`` declares, put with the package on ``PYTHONPATH`` of a subprocess: nothing
is left installed in the virtual environment, and parallel workers never share a folder.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from babel.support import Translations

from portal.cli import main
from portal.scaffold import KINDS, MAX_NAME

from .test_plugin_api import portal_imports

PYTHON = sys.executable
SINETTI = str(Path(sys.executable).with_name("sinetti"))
RUFF = str(Path(sys.executable).with_name("ruff"))
NAMES = {"theme": "acme-north", "verification": "acme", "sms": "acme", "storage": "acme"}
#: What ``sinetti plugins`` must say each generated plugin provides.
LISTED = {
    "theme": "themes: acme-north; translations: theme-acme-north (en, fi, sv)",
    "verification": "verification: acme; translations: verification-acme (en, fi, sv)",
    "sms": "sms: acme; translations: sms-acme (en, fi, sv); commands: sms-acme-test",
    "storage": "storage: acme; translations: storage-acme (en, fi, sv); "
    "commands: storage-acme-check",
}


# ``main`` sets the process's umask: the fixture gives the rest of the run its own back.
pytestmark = pytest.mark.usefixtures("restore_umask")


def new_plugin(kind: str, directory: Path, name: str | None = None) -> Path:
    assert (
        main(["new-plugin", "--kind", kind, name or NAMES[kind], "--directory", str(directory)])
        == 0
    )
    return directory / f"sinetti-{kind}-{name or NAMES[kind]}"


def make_importable(target: Path, site: Path) -> None:
    """What an editable install gives Sinetti: the distribution's metadata with the entry
    points of its ``pyproject.toml`` (put ``site`` and ``target`` on ``PYTHONPATH``)."""
    project = tomllib.loads((target / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    points = "".join(
        f"{key} = {value}\n" for key, value in project["entry-points"]["sinetti"].items()
    )
    (info / "entry_points.txt").write_text(f"[sinetti]\n{points}")


def environment(*paths: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
    env["PYTHONPATH"] = os.pathsep.join(str(path) for path in paths)
    return env


def files_of(directory: Path) -> list[Path]:
    return sorted(path.relative_to(directory) for path in directory.rglob("*") if path.is_file())


@pytest.mark.parametrize("kind", KINDS)
def test_generated_plugin_passes_its_own_test_inside_a_real_portal(kind, tmp_path):
    target = new_plugin(kind, tmp_path)
    make_importable(target, tmp_path / "site")

    result = subprocess.run(
        [PYTHON, "-m", "pytest", "-p", "no:playwright", "-p", "no:cacheprovider", "-q"],
        cwd=target,
        env=environment(tmp_path / "site", target),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "skipped" not in result.stdout


def test_sinetti_plugins_lists_every_generated_plugin_with_what_it_provides(tmp_path):
    paths = [tmp_path / "site"]
    for kind in KINDS:
        target = new_plugin(kind, tmp_path / "plugins")
        make_importable(target, tmp_path / "site")
        paths.append(target)

    result = subprocess.run(
        [SINETTI, "plugins"], env=environment(*paths), capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    for kind in KINDS:
        line = lines[f"{kind}-{NAMES[kind]}"]
        assert f"sinetti-{kind}-{NAMES[kind]}" in line and "0.1.0" in line
        assert line.endswith(LISTED[kind]), line


@pytest.mark.parametrize("kind", KINDS)
def test_generated_package_has_its_entry_point_catalogs_and_test(kind, tmp_path):
    target = new_plugin(kind, tmp_path)
    package = f"sinetti_{kind}_{NAMES[kind].replace('-', '_')}"

    project = tomllib.loads((target / "pyproject.toml").read_text(encoding="utf-8"))
    files = files_of(target)

    assert project["project"]["name"] == f"sinetti-{kind}-{NAMES[kind]}"
    assert project["project"]["entry-points"]["sinetti"] == {f"{kind}-{NAMES[kind]}": package}
    assert "sinetti" in project["project"]["dependencies"]
    assert Path("README.md") in files
    assert Path("tests", f"test_{NAMES[kind].replace('-', '_')}.py") in files
    for locale in ("fi", "sv", "en"):
        for suffix in ("po", "mo"):
            assert Path(package, "locales", locale, "LC_MESSAGES", f"messages.{suffix}") in files
    assert not [path for path in files if path.suffix == ".tmpl" or "PACKAGE" in str(path)]


@pytest.mark.parametrize("kind", KINDS)
def test_generated_code_imports_only_the_plugin_api_and_passes_ruff(kind, tmp_path):
    target = new_plugin(kind, tmp_path)
    sources = [path for path in target.rglob("*.py") if "tests" not in path.parts]

    assert sources
    for path in sources:
        assert [name for name in portal_imports(path) if name != "portal.api"] == [], path
    checked = subprocess.run(
        [RUFF, "check", "--no-cache", "--select", "E,F,W,I,B,UP,SIM,RUF,ASYNC", "."],
        cwd=target,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout
    formatted = subprocess.run(
        [RUFF, "format", "--no-cache", "--check", "."], cwd=target, capture_output=True, text=True
    )
    assert formatted.returncode == 0, formatted.stdout


@pytest.mark.parametrize("kind", KINDS)
def test_every_string_of_the_catalogs_is_translated_and_compiled(kind, tmp_path):
    target = new_plugin(kind, tmp_path)
    folder = next(target.glob("sinetti_*/locales"))
    english = Translations.load(str(folder), ["en"])
    messages = [key for key in english._catalog if key]  # every msgid

    assert messages
    for locale in ("fi", "sv"):
        catalog = Translations.load(str(folder), [locale])
        for message in messages:
            assert catalog.gettext(message) not in ("", message), (locale, message)


def test_generated_files_are_readable_by_others_although_sinetti_keeps_its_own_private(tmp_path):
    target = new_plugin("theme", tmp_path)  # main() has set the private umask meanwhile

    for path in [target, *target.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))


@pytest.mark.parametrize(
    "name",
    ["Acme", "1acme", "acme_x", "acme--x", "-acme", "acme-", "", "../evil", "a" * (MAX_NAME + 1)],
)
def test_a_bad_name_exits_2_and_writes_nothing(name, tmp_path, capsys):
    # After "--" a name that starts with a dash is the name, not an option.
    assert main(["new-plugin", "--kind", "theme", "--directory", str(tmp_path), "--", name]) == 2

    assert "bad name" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_kind_exits_2_and_writes_nothing(tmp_path, capsys):
    assert main(["new-plugin", "--kind", "mail", "acme", "--directory", str(tmp_path)]) == 2

    assert "unknown kind 'mail': expected one of theme, verification, sms, storage" in (
        capsys.readouterr().err
    )
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_exits_2_and_is_left_as_it_was(tmp_path, capsys):
    existing = tmp_path / "sinetti-sms-acme"
    existing.mkdir()
    (existing / "pyproject.toml").write_text("mine")

    assert main(["new-plugin", "--kind", "sms", "acme", "--directory", str(tmp_path)]) == 2

    assert "already exists" in capsys.readouterr().err
    assert files_of(existing) == [Path("pyproject.toml")]
    assert (existing / "pyproject.toml").read_text() == "mine"


@pytest.mark.parametrize(("kind", "name"), [("theme", "valtori"), ("storage", "local")])
def test_the_name_of_an_installed_provider_exits_2(kind, name, tmp_path, capsys):
    assert main(["new-plugin", "--kind", kind, name, "--directory", str(tmp_path)]) == 2

    assert f"an installed plugin already provides the {kind} '{name}'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_new_plugin_needs_no_settings(tmp_path, monkeypatch):
    """It writes files only: a fresh directory without PORTAL_* variables is enough."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PORTAL_DATABASE_URL", "not a url")  # would stop any portal command

    assert main(["new-plugin", "--kind", "storage", "acme"]) == 0

    assert (tmp_path / "sinetti-storage-acme" / "pyproject.toml").is_file()
