"""Theme assets and error pages."""

from __future__ import annotations

import logging
from typing import Any

from quart import Blueprint, Response, send_from_directory
from werkzeug.exceptions import HTTPException

from portal.context import portal
from portal.storage.base import StorageError
from portal.views.statuses import status_of
from portal.web import render_page

log = logging.getLogger(__name__)

bp = Blueprint("common", __name__)


@bp.get("/theme.css")
async def theme_css() -> Response:
    response = Response(portal().providers.theme.css(), mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/theme/<path:filename>")
async def theme_static(filename: str) -> Any:
    theme = portal().providers.theme
    if theme.static_dir is None:
        return await render_page("not_found.html", status=404)
    return await send_from_directory(theme.static_dir, filename)


async def http_error(error: HTTPException) -> Any:
    """Every HTTP error as a page in the user's language, never a traceback."""
    status = error.code or 500
    if status == 404:
        return await render_page("not_found.html", status=404)
    return await render_page("error.html", status=status, code=status, reason=error.description)


async def storage_unavailable(error: StorageError) -> Any:
    """Storage is down (or an object is missing) before a response started: say so, in the
    user's language, and tell the operator; nothing was changed."""
    log.error("storage backend failed: %s", error)
    return await render_page("error.html", status=status_of(error), code=503, reason="storage")


async def server_error(error: Exception) -> Any:
    log.exception("unhandled error", exc_info=error)
    return await render_page("error.html", status=500, code=500, reason="")
