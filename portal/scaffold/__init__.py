"""``sinetti new-plugin``: write the skeleton of a plugin package an agency can build on.

One kind of plugin per folder of ``templates/``: ``common/`` holds what every kind gets
(``pyproject.toml``, ``README.md``), ``<kind>/`` the package and its test. The templates are
the files they produce, with ``${placeholders}`` (:class:`string.Template`: no template
language of their own, so a theme's Jinja markup and Python code pass through untouched; a
literal dollar sign is written ``$$``). In paths, ``PACKAGE`` and ``NAME`` stand for the
package and the plugin's name, and ``.tmpl`` is dropped. A ``<kind>/_<placeholder>.md.tmpl``
is no file but the text of that placeholder (the README's configuration section). Catalogs
(``locales/<l>.po.tmpl``)
are written to ``<package>/locales/<l>/LC_MESSAGES/messages.po`` and compiled to ``.mo`` here,
so the package works as soon as it is installed.

For ``--kind sms`` and ``NAME`` ``acme`` the naming scheme is:

- directory and distribution ``sinetti-sms-acme``, package ``sinetti_sms_acme``;
- entry point ``sms-acme`` in the ``sinetti`` group, translation domain ``sms-acme``;
- provider name ``acme`` (``PORTAL_SMS=acme``), settings ``PORTAL_SMS_ACME_*``.

Nothing here needs settings or a database: it only writes files, and never over existing ones.
"""

from __future__ import annotations

import dataclasses
import io
import re
import string
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

TEMPLATES = Path(__file__).resolve().parent / "templates"
KINDS = ("theme", "verification", "sms", "storage")
#: What each kind's package is, in a sentence, and what it needs besides the portal.
DESCRIPTIONS = {
    "theme": "A Sinetti theme: the agency's name, colours, logo and footer",
    "verification": "A Sinetti verification provider: a one-time code e-mailed to the recipient",
    "sms": "A Sinetti SMS gateway: each SMS POSTed as JSON to an HTTP(S) endpoint",
    "storage": "A Sinetti storage backend: attachments as files under a directory of their own",
}
DEPENDENCIES = {"sms": ("sinetti", "httpx>=0.28,<1")}
#: The word ``sinetti plugins`` shows for what each kind provides (portal.clicommands.PROVIDES).
PROVIDES = {"theme": "themes", "verification": "verification", "sms": "sms", "storage": "storage"}
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
MAX_NAME = 32


class ScaffoldError(Exception):
    """The request cannot be carried out; nothing was written."""


@dataclasses.dataclass(frozen=True)
class Plugin:
    """The names of a plugin to generate, all derived from its kind and name."""

    kind: str
    name: str

    @property
    def distribution(self) -> str:
        return f"sinetti-{self.kind}-{self.name}"

    @property
    def package(self) -> str:
        return self.distribution.replace("-", "_")

    @property
    def entry_point(self) -> str:
        return f"{self.kind}-{self.name}"

    @property
    def prefix(self) -> str:
        """The settings prefix: ``SMS_ACME_`` claims ``PORTAL_SMS_ACME_*``."""
        return f"{self.kind}_{self.name}_".replace("-", "_").upper()

    @property
    def title(self) -> str:
        """``acme-north`` → ``Acme North``: a placeholder for the agency's name."""
        return " ".join(part.capitalize() for part in self.name.split("-"))

    @property
    def module(self) -> str:
        """The name as a Python identifier: ``acme-north`` → ``acme_north``."""
        return self.name.replace("-", "_")

    @property
    def camel(self) -> str:
        return self.title.replace(" ", "")

    def placeholders(self) -> dict[str, str]:
        dependencies = DEPENDENCIES.get(self.kind, ("sinetti",))
        return {
            "description": DESCRIPTIONS[self.kind],
            "dependencies": ", ".join(f'"{dependency}"' for dependency in dependencies),
            "kind": self.kind,
            "name": self.name,
            "distribution": self.distribution,
            "package": self.package,
            "entry_point": self.entry_point,
            "domain": self.entry_point,
            "prefix": self.prefix,
            "title": self.title,
            "camel": self.camel,
            "module": self.module,
        }


def check(kind: str, name: str, taken: frozenset[str] = frozenset()) -> Plugin:
    """The plugin to write, or :class:`ScaffoldError` saying what is wrong with the request.

    ``taken``: the names installed plugins already give to providers of this kind (a second
    theme ``default`` would stop the portal at start-up).
    """
    if kind not in KINDS:
        raise ScaffoldError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    if len(name) > MAX_NAME or not _NAME.match(name):
        raise ScaffoldError(
            f"bad name {name!r}: use lower-case letters, digits and single dashes, starting "
            f"with a letter (like acme or acme-north), at most {MAX_NAME} characters"
        )
    if name in taken:
        raise ScaffoldError(f"an installed plugin already provides the {kind} {name!r}")
    return Plugin(kind, name)


def generate(plugin: Plugin, directory: Path) -> Path:
    """Write ``plugin`` into ``directory/<distribution>`` and return that folder.

    Refuses (:class:`ScaffoldError`) when the folder exists: nothing is ever overwritten.
    """
    target = directory / plugin.distribution
    if target.exists():
        raise ScaffoldError(f"{target} already exists; choose another name or --directory")
    files = _render(plugin)
    target.mkdir(parents=True)
    # Source code, readable by whoever installs it: ``sinetti`` itself runs with a private
    # umask (portal.filemodes), which would make these 0600.
    target.chmod(0o755)
    for relative, content in files.items():
        path = target / relative
        for folder in reversed(path.relative_to(target).parents[:-1]):
            if not (target / folder).is_dir():
                (target / folder).mkdir()
                (target / folder).chmod(0o755)
        path.write_bytes(content)
        path.chmod(0o644)
    return target


def _render(plugin: Plugin) -> dict[Path, bytes]:
    """Every file of the plugin, rendered in memory (a broken template writes nothing)."""
    values = plugin.placeholders()
    # Fragments (``_<placeholder>.md.tmpl``) fill a placeholder of the common files.
    for fragment in sorted((TEMPLATES / plugin.kind).glob("_*.tmpl")):
        values[fragment.name[1:].split(".")[0]] = _substitute(fragment, values).strip()
    files: dict[Path, bytes] = {}
    for folder in (TEMPLATES / "common", TEMPLATES / plugin.kind):
        for source in sorted(p for p in folder.rglob("*") if p.is_file()):
            relative = source.relative_to(folder)
            if len(relative.parts) == 1 and relative.name.startswith("_"):
                continue
            if relative.parts[0] == "locales":
                locale = relative.name.removesuffix(".po.tmpl")
                catalog = Path(plugin.package, "locales", locale, "LC_MESSAGES", "messages.po")
                po = _substitute(source, values).encode("utf-8")
                files[catalog] = po
                files[catalog.with_suffix(".mo")] = _compile(po, locale)
                continue
            if source.suffix == ".tmpl":
                content = _substitute(source, values).encode("utf-8")
                relative = relative.with_suffix("")
            else:
                content = source.read_bytes()  # a binary or literal file, as it is
            parts = [
                part.replace("PACKAGE", plugin.package).replace("NAME", plugin.module)
                for part in relative.parts
            ]
            files[Path(*parts)] = content
    return files


def _substitute(source: Path, values: dict[str, str]) -> str:
    try:
        return string.Template(source.read_text(encoding="utf-8")).substitute(values)
    except (KeyError, ValueError) as exc:  # a bug in a template, not in the request
        raise RuntimeError(f"template {source}: {exc!r}") from exc


def _compile(po: bytes, locale: str) -> bytes:
    catalog = read_po(io.BytesIO(po), locale=locale)
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()
