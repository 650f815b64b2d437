"""The language menu in the top right corner: Finnish, Swedish and English."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

LANGUAGE_NAMES = {"fi": "Suomi", "sv": "Svenska", "en": "English"}


def expect_start_page_in(page: Page, lang: str, words: dict[str, dict[str, str]]) -> None:
    """The start page speaks ``lang``: html lang, the Sender field, Continue, the service title,
    and none of the other languages' words for them."""
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_label(words[lang]["Sender"], exact=True)).to_be_visible()
    expect(page.get_by_role("button", name=words[lang]["Continue"], exact=True)).to_be_visible()
    expect(page.locator("header")).to_contain_text(words[lang]["Confidential message"])
    for other in LANGUAGE_NAMES:
        if other != lang:
            expect(page.get_by_label(words[other]["Sender"], exact=True)).to_have_count(0)
            expect(
                page.get_by_role("button", name=words[other]["Continue"], exact=True)
            ).to_have_count(0)
    current = page.locator("header [aria-current]")
    expect(current).to_have_count(1)
    expect(current).to_have_text(LANGUAGE_NAMES[lang])


def test_language_menu_switches_texts_and_html_lang_and_the_choice_sticks(
    page: Page, words, assert_accessible, screenshot, phone_sized
) -> None:
    page.goto("/")
    expect_start_page_in(page, "fi", words)  # the browser asks for Finnish

    for lang in ("sv", "en", "fi"):
        page.get_by_role("link", name=LANGUAGE_NAMES[lang], exact=True).click()
        expect_start_page_in(page, lang, words)
        assert {c["name"]: c["value"] for c in page.context.cookies()}.get("sinetti_lang") == lang
        assert_accessible(page, f"the start page ({lang})")
        screenshot(page, f"language-start-{lang}")
        with phone_sized(page):
            screenshot(page, f"language-start-{lang}-phone")

        # The choice sticks on the next pages, which carry no ?lang.
        page.goto("/help")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.locator("header [aria-current]")).to_have_text(LANGUAGE_NAMES[lang])
        assert_accessible(page, f"the help page ({lang})")
        screenshot(page, f"language-help-{lang}")
        page.goto("/")
        expect_start_page_in(page, lang, words)


def test_lang_parameter_sets_the_language_of_a_fresh_browser(page: Page, words) -> None:
    page.goto("/?lang=sv")
    expect_start_page_in(page, "sv", words)
    page.goto("/help?lang=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.goto("/")
    expect_start_page_in(page, "en", words)


def test_first_visit_follows_the_browsers_language(browser, browser_context_args, words) -> None:
    context = browser.new_context(**{**browser_context_args, "locale": "sv-SE"})
    try:
        page = context.new_page()
        page.goto("/")
        expect_start_page_in(page, "sv", words)
    finally:
        context.close()
