"""File names and sizes as people see them."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, tzinfo

from babel.dates import format_date, format_time
from babel.numbers import format_decimal

from portal.i18n import babel_locale

_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
MAX_NAME = 180


def safe_filename(name: str, fallback: str = "attachment") -> str:
    """A file name safe on Windows, macOS and Linux: no path, no control or reserved
    characters, not empty, not too long (the extension is kept)."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    if not name:
        return fallback
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: MAX_NAME - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_NAME]
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
