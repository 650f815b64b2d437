"""Text that services write with the portal's templates: e-mails and the summary inside a
zip. The one place where a service meets Quart's template engine, so that services
themselves import nothing of Quart's requests, sessions or templates."""

from __future__ import annotations

from typing import Any

from quart import render_template


async def render_text(template_name: str, **context: Any) -> str:
    """Render ``template_name`` (in the current app's context, with its theme and language)."""
    return await render_template(template_name, **context)
