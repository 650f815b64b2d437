"""Theme assets, the public key of the signed receipts, and error pages."""

from __future__ import annotations

import logging
from typing import Any

from quart import Blueprint, Response, send_from_directory
from werkzeug.exceptions import HTTPException

from portal.context import portal
from portal.services import receipts
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


@bp.get("/.well-known/sinetti-receipt-key")
async def receipt_key() -> Response:
    """The public key that checks the portal's signed receipts (PEM), for anyone."""
    response = Response(
        receipts.public_pem(receipts.portal_key().public_key()), mimetype="text/plain"
    )
    response.headers["Access-Control-Allow-Origin"] = "*"  # public: any verifier may fetch it
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


async def database_unavailable(error: Exception) -> Any:
    """The database cannot take a write (a full disk, locked, down): a 503 page in the user's
    language instead of a 500, and an error for the operator."""
    log.error("the database cannot take a write: %s", error)
    return await render_page("error.html", status=503, code=503, reason="database")


async def server_error(error: Exception) -> Any:
    log.exception("unhandled error", exc_info=error)
    return await render_page("error.html", status=500, code=500, reason="")
