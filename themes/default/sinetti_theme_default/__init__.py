"""Sinetti's neutral default theme: a calm blue, a wax-seal mark, a placeholder agency name."""

from __future__ import annotations

from pathlib import Path

from portal.api import Theme, hookimpl

HERE = Path(__file__).resolve().parent

THEME = Theme(
    name="default",
    organisation={"fi": "Esimerkkivirasto", "sv": "Exempelverket", "en": "Example Agency"},
    title={
        "fi": "Salassa pidettävä viesti",
        "sv": "Sekretessbelagt meddelande",
        "en": "Confidential message",
    },
    tokens={"brand": "#1f4e79", "accent": "#0b5cad"},
    logo="seal.svg",
    static_dir=HERE / "static",
)


@hookimpl
def register_themes() -> list[Theme]:
    return [THEME]
