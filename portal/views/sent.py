"""The confirmation page, the zip and the signed receipt of what was sent and the status of
every sent message (only ever the signed-in sender's own)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from portal.context import portal
from portal.models import Sender
from portal.services import compose, history, receipts, retention, status
from portal.services.files import format_size, format_when
from portal.services.recipients import mask_phone
from portal.views import downloads
from portal.views.compose import sender_required
from portal.web import render_page

bp = Blueprint("sent", __name__)


@bp.get("/sent")
@sender_required
async def sent_list(sender: Sender) -> Any:
    sent = await status.sent_messages(sender.id)
    return await render_page(
        "status.html",
        sender=sender,
        sent=sent,
        history=await history.of_messages(sender.id, [item.message for item in sent]),
        when=lambda moment: format_when(moment, portal().settings.tz),
        deletion_day=lambda sent_at: retention.deletion_day(sent_at, portal().settings),
        mask_phone=mask_phone,
    )


@bp.get("/sent/<message_id>")
@sender_required
async def confirmation(sender: Sender, message_id: str) -> Any:
    message = await compose.sent_message(sender.id, message_id)
    if message is None:
        return await render_page("not_found.html", status=404)
    return await render_page(
        "sent.html",
        message=message,
        recipients=sorted(message.recipients, key=lambda recipient: recipient.id),
        attachments=list(message.attachments),
        sent_at=format_when(message.sent_at or message.created_at, portal().settings.tz),
        deletion_day=retention.deletion_day(
            message.sent_at or message.created_at, portal().settings
        ),
        format_size=format_size,
        mask_phone=mask_phone,
        receipt=receipts.parse(message.receipt)[0] if message.receipt else None,
    )


@bp.get("/sent/<message_id>/zip")
@sender_required
async def download_zip(sender: Sender, message_id: str) -> Any:
    message = await compose.sent_message(sender.id, message_id)
    if message is None:
        return await render_page("not_found.html", status=404)
    return await downloads.zip_response(message, receipt=message.receipt, actor=sender.email)


@bp.get("/sent/<message_id>/receipt.json")
@sender_required
async def download_receipt(sender: Sender, message_id: str) -> Any:
    """The signed receipt exactly as signed (messages sent before receipts existed have none)."""
    message = await compose.sent_message(sender.id, message_id)
    if message is None or message.receipt is None:
        return await render_page("not_found.html", status=404)
    response = Response(message.receipt.encode("utf-8"), mimetype="application/json")
    response.headers["Content-Disposition"] = downloads.attachment_disposition("receipt.json")
    return response
