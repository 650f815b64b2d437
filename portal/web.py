"""Small helpers every view uses: render a page (or its htmx fragment), redirect, error pages."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from quart import Response, current_app, request
from quart import redirect as quart_redirect

from portal import proxies


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true" and not request.headers.get(
        "HX-History-Restore-Request"
    )


async def render_page(template_name: str, status: int = 200, **context: Any) -> Response:
    """Render a page; an htmx request gets only the page's ``title`` and ``content`` blocks.

    The fragment is a block of the same template (no second copy of the markup); htmx swaps it
    into ``<main>`` and takes the ``<title>`` from it.
    """
    await current_app.update_template_context(context)
    template = current_app.jinja_env.get_template(template_name)
    if is_htmx():
        ctx = template.new_context(context)
        blocks: Any = template.blocks
        title = "".join([part async for part in blocks["title"](ctx)])
        content = await current_app.jinja_env.get_template("_signed_in.html").render_async(
            context
        ) + "".join([part async for part in blocks["content"](ctx)])
        # Both blocks are output of the autoescaping template: already safe HTML.
        safe_title, safe_content = Markup(title.strip()), Markup(content)  # noqa: S704
        html: str = Markup("<title>{} – {}</title>\n{}").format(
            safe_title, context.get("service_title", ""), safe_content
        )
    else:
        html = await template.render_async(context)
    response = Response(html, status=status, mimetype="text/html")
    response.vary.add("HX-Request")
    return response


def redirect(location: str) -> Any:
    """A 303 redirect; for htmx a full navigation (``HX-Redirect``) so the URL bar follows."""
    if is_htmx():
        response = Response("", status=200)
        response.headers["HX-Redirect"] = location
        return response
    return quart_redirect(location, 303)


def client_ip() -> str:
    """The client's address: the peer's, or behind ``PORTAL_TRUSTED_PROXIES`` the one those
    proxies report (:mod:`portal.proxies`). Per-address limits count what this returns."""
    peer = request.remote_addr or "unknown"
    trusted = current_app.extensions["sinetti"].settings.trusted_proxies
    if not trusted:
        return peer  # no proxy is believed: the headers are anybody's to write
    return proxies.client_address(
        peer,
        request.headers.getlist("X-Forwarded-For"),
        request.headers.getlist("Forwarded"),
        proxies.parse_networks(trusted),
    )
