"""portal.i18n and the language menu: how the language is chosen, and complete catalogs."""

from __future__ import annotations

import html
import importlib.util
import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from portal.i18n import CORE_DOMAIN, _, locale_context, negotiate

from .helpers import csrf_of, page_text, post_compose

ROOT = Path(__file__).resolve().parents[2]


def page_language(html: str) -> str:
    return re.search(r'<html lang="(\w+)">', html).group(1)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "fi"),
        ("", "fi"),
        ("sv-FI,sv;q=0.9,en;q=0.8", "sv"),
        ("de-DE,de;q=0.9,en;q=0.5", "en"),
        ("en;q=0.3, fi;q=0.7", "fi"),
        ("de, fr", "fi"),
        ("sv;q=0, en", "en"),
        ("EN-gb", "en"),
        ("sv;q=abc, en;q=0.1", "en"),
        ("sv-FI, fi;q=0.95, en;q=0.9", "sv"),  # the liked region wins over a worse exact tag
        ("en-US;q=0.5, sv-SE;q=0.9", "sv"),
        ("fi-FI", "fi"),
        ("*", "fi"),
        ("sv;q=0", "fi"),
        ("zh-Hant-TW, en", "en"),
    ],
)
def test_accept_language_is_negotiated_by_quality(header, expected):
    assert negotiate(header, "fi") == expected


async def test_default_language_is_finnish(client):
    assert page_language(await page_text(await client.get("/"))) == "fi"


async def test_first_visit_follows_accept_language(client):
    response = await client.get("/", headers={"Accept-Language": "sv-SE,sv;q=0.9"})

    assert page_language(await page_text(response)) == "sv"


async def test_lang_parameter_wins_and_is_remembered_in_a_cookie(client):
    response = await client.get("/help?lang=en", headers={"Accept-Language": "sv"})

    assert page_language(await page_text(response)) == "en"
    assert "sinetti_lang=en" in response.headers["Set-Cookie"]

    later = await client.get("/", headers={"Accept-Language": "sv"})
    assert page_language(await page_text(later)) == "en"


async def test_cookie_wins_over_accept_language_and_lang_over_cookie(client):
    await client.get("/?lang=sv")

    assert page_language(await page_text(await client.get("/"))) == "sv"
    assert page_language(await page_text(await client.get("/?lang=fi"))) == "fi"
    assert page_language(await page_text(await client.get("/"))) == "fi"


async def test_unknown_language_is_ignored(client):
    response = await client.get("/?lang=de", headers={"Accept-Language": "en"})

    assert page_language(await page_text(response)) == "en"
    assert "sinetti_lang" not in response.headers.get("Set-Cookie", "")


class TestAgencyDefault:
    @pytest.fixture
    def portal_config(self, portal_config):
        return {**portal_config, "default_locale": "sv"}

    async def test_agency_default_language_is_used_without_a_preference(self, client):
        assert page_language(await page_text(await client.get("/"))) == "sv"


def language_menu(html: str) -> list[tuple[str, str]]:
    nav = re.search(r'<nav class="language-menu".*?</nav>', html, re.S)
    assert nav, "no language menu"
    return re.findall(r'<a href="([^"]+)" lang="(\w+)"', nav.group(0))


async def test_language_menu_is_on_every_page_and_keeps_the_page(client, sign_in):
    link = await sign_in("liisa@example.com")
    response = await post_compose(
        client, {"recipients": "v@valtori.fi", "subject": "S", "body": "B", "action": "send"}
    )
    sent = response.headers["Location"]
    pages = ["/", "/help", "/compose", sent, link, "/s/" + "x" * 43, "/no/such/page"]

    for path in pages:
        response = await client.get(path, follow_redirects=True)
        menu = language_menu(await page_text(response))
        assert [code for _href, code in menu] == ["fi", "sv", "en"], path
        for href, code in menu:
            assert href.endswith(f"lang={code}"), (path, href)

    cancelled = await client.post("/compose/cancel", form={"csrf_token": await csrf_of(client)})
    assert len(language_menu(await page_text(cancelled))) == 3
    assert len(language_menu(await page_text(await client.get("/compose")))) == 3


async def test_language_menu_keeps_the_other_query_arguments(client):
    menu = language_menu(await page_text(await client.get("/help?x=1&lang=fi")))

    assert ("/help?x=1&amp;lang=sv", "sv") in menu


async def test_language_menu_of_a_page_answering_a_post_leads_to_a_page_that_exists(
    client, sign_in
):
    await sign_in("liisa@example.com")
    csrf = await csrf_of(client)

    html = await page_text(await client.post("/compose/cancel", form={"csrf_token": csrf}))

    assert 'href="/compose/cancel?lang=sv"' not in html  # a GET there would be a 405
    assert 'href="/compose?lang=sv"' in html


def resolve_like_a_browser(href: str, base: str = "http://portal.test/") -> tuple[str, str]:
    """(netloc, path) of ``href`` as a browser follows it: entities decoded, tabs and new lines
    dropped and, for http(s), every backslash read as a slash (the WHATWG URL standard)."""
    href = html.unescape(href)
    href = re.sub(r"[\t\n\r]", "", href).replace("\\", "/")
    resolved = urlsplit(urljoin(base, href))
    return resolved.netloc, resolved.path


HOSTILE_PATHS = [
    "/%5Cevil.example/x",
    "/%5C%5Cevil.example",
    "//evil.example/x",
    "///evil.example",
    "/%2F%2Fevil.example",
    "/%2F/evil.example",
    "/\t/evil.example",
    "/%09/evil.example",
    "/%0A/evil.example",
    "/\\evil.example/x",
    "/s/%5Cevil.example",
    "/m/%5C%5Cevil.example",
    "/m/%2F%2Fevil.example",
    "/theme/%2F%2Fevil.example/x.css",
    "/help/%5Cevil.example",
    "/compose/uploads/%5Cevil.example",
]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
@pytest.mark.parametrize("path", HOSTILE_PATHS)
async def test_language_menu_of_a_hostile_path_stays_on_the_portal(client, path, method):
    response = await client.open(path, method=method)

    if response.status_code == 308:  # werkzeug merges slashes: a redirect on the same host
        assert resolve_like_a_browser(response.headers["Location"], "http://localhost/")[0] == (
            "localhost"
        )
        return
    menu = language_menu(await page_text(response))
    assert [code for _href, code in menu] == ["fi", "sv", "en"]
    for href, code in menu:
        assert re.match(r"/(?:[^/\\]|\?)", href), href
        netloc, link_path = resolve_like_a_browser(href)
        assert netloc == "portal.test", (path, href)
        assert not link_path.startswith("//"), (path, href)
        assert href.endswith(f"lang={code}")


async def test_language_menu_of_an_unknown_page_leads_to_the_start_page(client):
    menu = language_menu(await page_text(await client.get("/%5Cevil.example/x?a=1")))

    assert menu == [("/?lang=fi", "fi"), ("/?lang=sv", "sv"), ("/?lang=en", "en")]


async def test_language_menu_quotes_what_the_route_matched(client):
    response = await client.get("/s/%5Cevil.example?lang=en")

    assert response.status_code == 404
    assert ("/s/%5Cevil.example?lang=sv", "sv") in language_menu(await page_text(response))


async def test_current_language_is_marked_in_the_menu(client):
    html = await page_text(await client.get("/?lang=sv"))

    current = re.findall(r'<a [^>]*lang="(\w+)"[^>]*aria-current="true"', html)
    assert current == ["sv"]


@pytest.mark.parametrize("locale", ["fi", "sv"])
async def test_pages_are_translated(portal_app, client, locale):
    html = await page_text(await client.get(f"/?lang={locale}"))
    english = await page_text(await client.get("/?lang=en"))

    async with portal_app.app.app_context():  # the app's catalogs translate
        with locale_context(locale):
            translated = _("Continue")
    assert translated != "Continue", f"{locale}: “Continue” is not translated"
    assert f">{translated}</button>" in html
    assert ">Continue</button>" in english


async def test_translations_belong_to_the_app_not_the_process(portal_app):
    with locale_context("fi"):
        outside = _("Continue")
        async with portal_app.app.app_context():
            inside = _("Continue")

    assert outside == "Continue"  # no app: the English source
    assert inside != "Continue"
    core = portal_app.app.extensions["sinetti"].translations[CORE_DOMAIN]
    assert core["fi"].ugettext("Continue") == inside


async def test_a_second_app_has_its_own_catalogs(portal_app, portal_config):
    from portal.app import create_app
    from portal.testing import builtin_plugins

    other = create_app(portal_config, plugins=builtin_plugins())
    ours = portal_app.app.extensions["sinetti"].translations[CORE_DOMAIN]
    theirs = other.extensions["sinetti"].translations[CORE_DOMAIN]

    assert theirs is not ours
    assert theirs["sv"] is not ours["sv"]
    async with other.app_context():
        with locale_context("sv"):
            assert _("Continue") == theirs["sv"].ugettext("Continue") != "Continue"


def load_i18n_tool():
    spec = importlib.util.spec_from_file_location("sinetti_i18n_tool", ROOT / "tools" / "i18n.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_catalogs_are_complete_and_up_to_date():
    problems = load_i18n_tool().problems()

    assert problems == [], "\n".join(problems[:40]) + f"\n({len(problems)} problems)"
