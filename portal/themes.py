"""Themes: an agency's name, colours and logo, plus optional template block overrides."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path

_TOKEN_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_TOKEN_VALUE = re.compile(r"^[#(),.%\w\s-]+$")

#: Design tokens every theme starts from; a theme overrides any of them.
DEFAULT_TOKENS: Mapping[str, str] = {
    "brand": "#1f4e79",
    "brand-contrast": "#ffffff",
    "accent": "#0b6bcb",
    "text": "#1b1b1b",
    "muted": "#4a5560",
    "background": "#f4f6f8",
    "surface": "#ffffff",
    "border": "#b9c2cc",
    "error": "#b00020",
    "success": "#1e6b2f",
    "focus": "#ffbf47",
    "radius": "6px",
    "font": "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif",
}


@dataclasses.dataclass(frozen=True)
class Theme:
    """One look of the portal.

    ``organisation`` and ``title`` map a locale (fi, sv, en) to text. ``logo`` is a file name
    in ``static_dir``. ``templates_dir`` may hold ``base.html`` extending ``layout.html`` to
    override its blocks (``brand``, ``footer``…); never whole pages.
    """

    name: str
    organisation: Mapping[str, str]
    title: Mapping[str, str]
    tokens: Mapping[str, str] = dataclasses.field(default_factory=dict)
    logo: str | None = None
    static_dir: Path | None = None
    templates_dir: Path | None = None

    def __post_init__(self) -> None:
        for key, value in self.tokens.items():
            if not _TOKEN_NAME.match(key) or not _TOKEN_VALUE.match(value):
                raise ValueError(f"theme {self.name}: bad design token {key}: {value!r}")

    def text(self, field: str, locale: str) -> str:
        texts: Mapping[str, str] = getattr(self, field)
        return texts.get(locale) or texts.get("en") or next(iter(texts.values()), "")

    def css(self) -> str:
        """The design tokens as CSS custom properties, served as ``/theme.css``."""
        tokens = {**DEFAULT_TOKENS, **self.tokens}
        lines = [f"  --{key}: {value};" for key, value in sorted(tokens.items())]
        return ":root {\n" + "\n".join(lines) + "\n}\n"
