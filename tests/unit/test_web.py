"""portal.web and the error pages: htmx fragments, redirects, errors in the user's language."""

from __future__ import annotations

import logging

import pytest
from quart import Blueprint

from portal import hookimpl
from portal.testing import builtin_plugins, csrf_from

from .helpers import newest_link, page_text, sign_in_with

failing = Blueprint("failing", __name__)


@failing.get("/boom")
async def boom() -> str:
    raise RuntimeError("secret detail /etc/sinetti of the crash")


class FailingPlugin:
    @hookimpl
    def register_blueprints(self):
        return [failing]


@pytest.fixture
def portal_plugins():
    return [*builtin_plugins(), FailingPlugin()]


async def test_htmx_request_gets_only_the_title_and_content_of_the_page(client):
    response = await client.get("/help?lang=en", headers={"HX-Request": "true"})
    html = await page_text(response)

    assert html.startswith("<title>Help – Confidential message</title>")
    assert "<html" not in html and "<header" not in html
    assert "<h1>" in html
    assert "HX-Request" in response.headers["Vary"]


async def test_full_page_for_htmx_history_restore(client):
    response = await client.get(
        "/help", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )

    assert (await page_text(response)).startswith("<!doctype html>")


async def test_full_page_is_the_same_template_as_the_fragment(client):
    fragment = await page_text(await client.get("/help?lang=en", headers={"HX-Request": "true"}))
    page = await page_text(await client.get("/help?lang=en"))

    body = fragment.split("</title>\n", 1)[1].strip()
    assert body in page


async def test_redirect_for_htmx_is_a_full_navigation(portal_app):
    registering = portal_app.test_client()
    await sign_in_with(registering, "liisa@example.com")
    link = await newest_link(registering, "liisa@example.com")

    browser = portal_app.test_client()
    csrf = csrf_from(await page_text(await browser.get(link)))
    response = await browser.post(link, form={"csrf_token": csrf}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/compose"


async def test_not_found_page_is_in_the_users_language(client):
    response = await client.get("/nothing/here?lang=en")

    assert response.status_code == 404
    assert "Page not found" in await page_text(response)


async def test_wrong_method_gets_a_405_page(client):
    response = await client.get("/compose/cancel?lang=en")

    assert response.status_code == 405
    assert "Error code: 405" in await page_text(response)


async def test_crash_gives_a_500_page_without_details(client, caplog):
    with caplog.at_level(logging.ERROR):
        response = await client.get("/boom?lang=en")
    html = await page_text(response)

    assert response.status_code == 500
    assert "Something went wrong" in html
    assert "secret detail" not in html and "Traceback" not in html
    assert "secret detail" in caplog.text  # but it is logged for the operators
