"""A theme in the style of Valtori's secure-message portal: a blue header with an envelope
mark and "Salassa pidettävä viesti". The mark is drawn for Sinetti; no trademark artwork."""

from __future__ import annotations

from pathlib import Path

from portal.api import Theme, hookimpl

HERE = Path(__file__).resolve().parent

THEME = Theme(
    name="valtori",
    organisation={
        "fi": "Valtion tieto- ja viestintätekniikkakeskus",
        "sv": "Statens center för informations- och kommunikationsteknik",
        "en": "Government ICT Centre Valtori",
    },
    title={
        "fi": "Salassa pidettävä viesti",
        "sv": "Sekretessbelagt meddelande",
        "en": "Confidential message",
    },
    tokens={"brand": "#0a3a7a", "accent": "#0050a8", "focus": "#ffd23f"},
    logo="envelope.svg",
    static_dir=HERE / "static",
    templates_dir=HERE / "templates",
)


@hookimpl
def register_themes() -> list[Theme]:
    return [THEME]
