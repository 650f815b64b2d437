"""The pages run under the portal's real Content-Security-Policy (the other tests bypass it to
inject axe-core): no inline script or style of ours or of htmx is refused."""

from __future__ import annotations

import pytest
from conftest import continue_with_link
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_flow_pages_cause_no_content_security_policy_violations(
    browser, browser_context_args, mail, new_address
) -> None:
    context = browser.new_context(**{**browser_context_args, "bypass_csp": False})
    refused: list[str] = []
    try:
        page = context.new_page()
        page.on(
            "console",
            lambda msg: "Content Security Policy" in msg.text and refused.append(msg.text),
        )
        page.on("pageerror", lambda error: refused.append(f"page error: {error}"))
        address = new_address("csp")
        page.goto("/?lang=en")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.get_by_label("Sender", exact=True).fill(address)
        page.get_by_role("button", name="Continue", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Registration succeeded")
        continue_with_link(page, mail.personal_link(address))
        # An htmx-boosted post that swaps in an error (a missing subject).
        page.get_by_label("Recipients", exact=True).fill("anna@example.fi")
        page.get_by_role("button", name="Send", exact=True).click()
        expect(page.get_by_role("alert")).to_contain_text("There is a problem")
        page.goto("/help")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
    finally:
        context.close()
    assert refused == [], "\n".join(refused)
