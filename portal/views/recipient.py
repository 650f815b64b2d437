"""The page a recipient's personal link leads to.

Opening (and the PIN flow of ``sms-pin``) comes with the recipient issue; this page already
names the sender, says the message is waiting and how it will be opened.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from portal.context import portal
from portal.models import Recipient
from portal.security import hash_token
from portal.web import render_page

bp = Blueprint("recipient", __name__)


@bp.get("/m/<token>")
async def waiting(token: str) -> Any:
    recipient = await Recipient.get_or_none(token_hash=hash_token(token)).prefetch_related(
        "message__sender"
    )
    if recipient is None:
        return await render_page("not_found.html", status=404)
    provider = portal().providers.verification[recipient.verification]
    return await render_page(
        "waiting.html",
        recipient=recipient,
        sender_email=recipient.message.sender.email,
        how_to_open=provider.describe(recipient),
    )
