"""portal.themes and the two built-in themes."""

from __future__ import annotations

import pytest

from portal.themes import DEFAULT_TOKENS, Theme

from .helpers import page_text


def theme(**changes) -> Theme:
    values = {
        "name": "t",
        "organisation": {"fi": "Virasto", "en": "Agency"},
        "title": {"sv": "Meddelande"},
    }
    values.update(changes)
    return Theme(**values)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("brand", "red; } body { display: none"),
        ("brand", "url(https://evil.example/x.png)"),
        ("Brand", "#fff"),
        ("brand;x", "#fff"),
        ("brand", "</style><script>"),
    ],
)
def test_design_token_that_could_break_out_of_css_is_refused(key, value):
    with pytest.raises(ValueError, match="bad design token"):
        theme(tokens={key: value})


def test_texts_fall_back_to_english_then_to_any_language():
    agency = theme()

    assert agency.text("organisation", "fi") == "Virasto"
    assert agency.text("organisation", "sv") == "Agency"
    assert agency.text("title", "fi") == "Meddelande"


def test_css_has_every_default_token_and_the_themes_overrides():
    css = theme(tokens={"brand": "#123456", "radius": "0"}).css()

    assert css.startswith(":root {")
    assert "--brand: #123456;" in css
    assert "--radius: 0;" in css
    for key in DEFAULT_TOKENS:
        assert f"--{key}: " in css


async def test_default_theme_brands_the_pages(client):
    html = await page_text(await client.get("/?lang=fi"))

    assert "Esimerkkivirasto" in html
    assert "Salassa pidettävä viesti" in html
    assert 'src="/theme/seal.svg"' in html


async def test_theme_files_and_css_are_served_and_cacheable(client):
    logo = await client.get("/theme/seal.svg")
    css = await client.get("/theme.css")

    assert logo.status_code == 200
    assert logo.mimetype == "image/svg+xml"
    assert css.mimetype == "text/css"
    assert css.headers["Cache-Control"].startswith("public")
    assert (await client.get("/theme/../../config.py")).status_code == 404
    assert (await client.get("/theme/missing.svg")).status_code == 404


class TestValtori:
    @pytest.fixture
    def portal_config(self, portal_config):
        return {**portal_config, "theme": "valtori"}

    @pytest.mark.parametrize(
        ("locale", "organisation", "title"),
        [
            ("fi", "Valtion tieto- ja viestintätekniikkakeskus", "Salassa pidettävä viesti"),
            (
                "sv",
                "Statens center för informations- och kommunikationsteknik",
                "Sekretessbelagt meddelande",
            ),
            ("en", "Government ICT Centre Valtori", "Confidential message"),
        ],
    )
    async def test_valtori_header_in_every_language(self, client, locale, organisation, title):
        html = await page_text(await client.get(f"/?lang={locale}"))

        assert "brand--valtori" in html
        assert 'src="/theme/envelope.svg"' in html
        assert organisation in html
        assert title in html

    async def test_valtori_overrides_only_the_brand_block(self, client):
        html = await page_text(await client.get("/?lang=en"))

        assert 'class="language-menu"' in html
        assert 'class="site-footer"' in html
        assert (await client.get("/theme/envelope.svg")).status_code == 200
        assert "--brand: #0a3a7a;" in await page_text(await client.get("/theme.css"))
