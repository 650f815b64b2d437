"""File names and sizes as people see them."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, tzinfo

from babel.dates import format_date, format_time
from babel.numbers import format_decimal

from portal.i18n import babel_locale

# Characters Windows, macOS or Linux refuse in a name (the path separators among them).
_UNSAFE = re.compile(r'[<>:"/\\|?*]')
MAX_NAME = 180
# Names Windows reserves for devices, whatever the extension or case (``nul.txt`` too).
_RESERVED = re.compile(r"(?:CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|(?:COM|LPT)[0-9\u00b9\u00b2\u00b3])")
# Unicode categories that are never shown as themselves: controls become "_" (they separated
# something), line/paragraph separators too, surrogates (not encodable) too; format characters
# (bidi overrides, zero-width spaces, BOM, …) are invisible, so they are dropped: what is left
# reads as the person typed it, and ``rtl\u202egnp.exe`` cannot pose as ``rtlexe.png``.
_REPLACED = frozenset({"Cc", "Cs", "Zl", "Zp"})
_DROPPED = "Cf"


def _clean_characters(name: str) -> str:
    out = []
    for char in name:
        category = unicodedata.category(char)
        if category == _DROPPED:
            continue
        out.append("_" if category in _REPLACED else char)
    return _UNSAFE.sub("_", "".join(out))


def _visible(name: str) -> str:
    """NFC with no unsafe, control or format characters. Dropping a format character can
    join a base letter and its combining mark, so normalise and clean until nothing changes."""
    name = unicodedata.normalize("NFC", name)
    for _round in range(4):
        cleaned = unicodedata.normalize("NFC", _clean_characters(name))
        if cleaned == name:
            break
        name = cleaned
    return name


def _not_reserved(name: str) -> str:
    """``CON`` → ``_CON``, ``nul.tar.gz`` → ``_nul.tar.gz``: Windows would open a device."""
    stem = name.split(".", 1)[0].rstrip(" ")
    return "_" + name if _RESERVED.fullmatch(stem.upper()) else name


def safe_filename(name: str, fallback: str = "attachment") -> str:
    """A file name safe on Windows, macOS and Linux and readable as typed: no path, no control,
    format (bidi, zero-width) or reserved characters, no device name, not empty, not too long
    (the extension is kept). Idempotent: a cleaned name stays as it is."""
    name = re.split(r"[\\/]", name or "")[-1]
    name = _visible(name).strip(" .")
    if not name:
        return fallback
    name = _not_reserved(name)
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: MAX_NAME - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_NAME].rstrip(" .")
    return name


def unique_names(names: list[str]) -> list[str]:
    """De-duplicate (case-insensitively): ``a.pdf``, ``a (2).pdf``, ``a (3).pdf``."""
    taken: set[str] = set()
    result = []
    for name in names:
        candidate, counter = name, 1
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem:
            stem, dot, ext = name, "", ""
        while candidate.lower() in taken:
            counter += 1
            candidate = f"{stem} ({counter}){dot}{ext}"
        taken.add(candidate.lower())
        result.append(candidate)
    return result


def format_size(size: int) -> str:
    """``1.5 MB`` in the current locale (``1,5 MB`` in Finnish). Binary multiples."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            break
        value /= 1024
    pattern = "#,##0" if unit == "B" or value >= 100 or value == int(value) else "#,##0.0"
    return f"{format_decimal(value, format=pattern, locale=babel_locale())}\u00a0{unit}"


def format_when(moment: datetime, tz: tzinfo) -> str:
    """``30. marraskuuta 2026 7.09`` / ``30 november 2026 07:09`` in the current locale."""
    locale = babel_locale()
    local = moment.astimezone(tz)
    day = format_date(local, "long", locale=locale)
    return f"{day} {format_time(local, 'short', locale=locale)}"
