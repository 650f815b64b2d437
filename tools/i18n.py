"""Keep the translation catalogs of the core and the built-in plugins in step.

    python tools/i18n.py update    extract strings and update every .po (new strings empty)
    python tools/i18n.py compile   build the .mo files (not committed)
    python tools/i18n.py check     fail if a catalog is stale or a fi/sv/en string is missing
    python tools/i18n.py fill F    fill empty strings from a JSON file {"fi": {msgid: text}, …}
                                   (a plural: its singular msgid and a list of the forms)

Each domain is a folder of sources and the locales/ folder of its catalogs: the core, and each
plugin that has strings of its own.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ("fi", "sv", "en")
DOMAINS = {
    "core": (ROOT / "locales", [ROOT / "portal"]),
    "devbox": (ROOT / "plugins/devbox/sinetti_devbox/locales", [ROOT / "plugins/devbox"]),
    "verification-basic": (
        ROOT / "plugins/verification_basic/sinetti_verification_basic/locales",
        [ROOT / "plugins/verification_basic"],
    ),
}


def babel(*args: str) -> None:
    CommandLineInterface().run(["pybabel", "-q", *args])


def extract(sources: list[Path], output: Path) -> None:
    babel(
        "extract",
        "-F",
        str(ROOT / "babel.cfg"),
        "-k",
        "L_",
        "--no-location",
        "--sort-output",
        "--omit-header",
        "-o",
        str(output),
        *map(str, sources),
    )


def update() -> None:
    for folder, sources in DOMAINS.values():
        folder.mkdir(parents=True, exist_ok=True)
        pot = folder / "messages.pot"
        extract(sources, pot)
        for locale in LOCALES:
            po = folder / locale / "LC_MESSAGES" / "messages.po"
            if po.exists():
                babel(
                    "update",
                    "-i",
                    str(pot),
                    "-d",
                    str(folder),
                    "-l",
                    locale,
                    "--no-fuzzy-matching",
                    "--ignore-obsolete",
                )
            else:
                babel("init", "-i", str(pot), "-d", str(folder), "-l", locale)
        fill_english(folder / "en" / "LC_MESSAGES" / "messages.po")


def fill_english(po: Path) -> None:
    """English is the source language: its catalog says the same, so it is never incomplete."""
    with po.open("rb") as fh:
        catalog = read_po(fh, locale="en")
    for message in catalog:
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.id and not all(strings):
            message.string = message.id
    with po.open("wb") as fh:
        write_po(fh, catalog, width=100, omit_header=False)


def compile_all() -> None:
    for folder, _sources in DOMAINS.values():
        for locale in LOCALES:
            babel("compile", "-d", str(folder), "-l", locale)


def problems() -> list[str]:
    found: list[str] = []
    for name, (folder, sources) in DOMAINS.items():
        with tempfile.TemporaryDirectory() as tmp:
            pot = Path(tmp) / "messages.pot"
            extract(sources, pot)
            with pot.open("rb") as fh:
                expected = {m.id for m in read_po(fh) if m.id}
        for locale in LOCALES:
            po = folder / locale / "LC_MESSAGES" / "messages.po"
            if not po.exists():
                found.append(f"{name}/{locale}: {po} is missing")
                continue
            with po.open("rb") as fh:
                catalog = read_po(fh)
            have = {m.id for m in catalog if m.id}
            for msgid in sorted(expected - have, key=str):
                found.append(
                    f"{name}/{locale}: stale catalog, missing {msgid!r} (run tools/i18n.py update)"
                )
            for msgid in sorted(have - expected, key=str):
                found.append(f"{name}/{locale}: stale catalog, obsolete {msgid!r}")
            for message in catalog:
                if not message.id:
                    continue
                strings = message.string if isinstance(message.string, tuple) else (message.string,)
                if not all(strings) or message.fuzzy:
                    found.append(f"{name}/{locale}: untranslated {message.id!r}")
    return found


def fill(path: str) -> None:
    texts = json.loads(Path(path).read_text(encoding="utf-8"))
    for folder, _sources in DOMAINS.values():
        for locale, table in texts.items():
            po = folder / locale / "LC_MESSAGES" / "messages.po"
            with po.open("rb") as fh:
                catalog = read_po(fh, locale=locale)
            for message in catalog:
                # A plural is keyed by its singular and given as a list of forms.
                key = message.id[0] if isinstance(message.id, tuple) else message.id
                strings = message.string if isinstance(message.string, tuple) else (message.string,)
                if key in table and not all(strings):
                    value = table[key]
                    message.string = tuple(value) if isinstance(value, list) else value
            with po.open("wb") as fh:
                write_po(fh, catalog, width=100)


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "update":
        update()
    elif command == "compile":
        compile_all()
    elif command == "fill":
        fill(sys.argv[2])
    elif command == "check":
        issues = problems()
        print("\n".join(issues) or "translations complete")
        return 1 if issues else 0
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
