"""Guards of portal.security that mutation testing found unguarded: a view marked as reading
its own body as a stream (the compose and reply forms with files) is exempt from the 1 MB cap
and the early CSRF check of ordinary forms; its CSRF token is checked by the view itself."""

from __future__ import annotations

import os

from portal.app import FORM_BODY_LIMIT
from portal.models import Attachment

from .helpers import csrf_of, page_text, post_compose

SENDER = "liisa@example.com"


async def test_a_streamed_form_may_be_bigger_than_the_cap_of_ordinary_forms(client, sign_in):
    await sign_in(SENDER)
    big = os.urandom(2 * FORM_BODY_LIMIT)

    response = await post_compose(client, {"action": "attach"}, [("attachments", "big.bin", big)])

    assert response.status_code == 200
    assert (await Attachment.get()).size == len(big)


async def test_an_ordinary_form_bigger_than_the_cap_is_refused(client, sign_in):
    await sign_in(SENDER)
    csrf = await csrf_of(client)

    response = await client.post(
        "/compose/cancel", form={"csrf_token": csrf, "padding": "x" * (2 * FORM_BODY_LIMIT)}
    )

    assert response.status_code == 413


async def test_a_csrf_token_of_invalid_utf_8_is_refused_before_the_check_never_an_error(
    client, sign_in
):
    """A token of bytes that are not UTF-8 (here an encoded lone surrogate) never reaches the
    comparison: the form parser refuses the form (400). So the ``surrogatepass`` with which
    ``csrf_valid`` encodes the token is a second net that no request reaches, and mutants of
    it survive (docs/mutation.md)."""
    await sign_in(SENDER)

    response = await client.post(
        "/compose/cancel",
        data=b"csrf_token=%ED%A0%80%FF",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 400


async def test_a_form_without_its_csrf_token_is_told_to_reload_the_page(client, sign_in):
    """The refusal says what to do (reload), in the page's language: not the page for any
    bad request."""
    await sign_in(SENDER)
    await client.get("/compose?lang=en")

    response = await client.post("/compose/cancel", form={"csrf_token": "not-the-token"})

    assert response.status_code == 400
    text = await page_text(response)
    assert "Your session has expired or the form is out of date. Reload the page" in text
