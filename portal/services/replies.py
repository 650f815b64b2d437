"""Secure replies: the recipient of a message answers its sender through the portal.

The reply is a message like any other: its author is stored as a sender (by address, with no
personal link), its one recipient is the original sender, who gets a notification with a link
and opens it through the same recipient pages (verification ``none`` is enough: the link went
to the sender's own mailbox). ``reply_to`` records which message it answers.
"""

from __future__ import annotations

from portal import events
from portal.config import Settings
from portal.i18n import _
from portal.models import Message, Recipient, Sender, SenderLink
from portal.services import compose, drafts
from portal.services.compose import MAX_SUBJECT, MAX_TEXT, ComposeForm
from portal.services.recipients import ParsedRecipient
from portal.services.text import has_control_characters
from portal.services.uploads import StoredFile


async def author(recipient: Recipient) -> tuple[Sender, bool]:
    """The sender row of the person replying (made on their first reply) and whether it was
    made now."""
    return await Sender.get_or_create(email=recipient.email.lower())


async def forget_author(author: Sender) -> None:
    """A reply that was refused leaves nothing behind: the author's row made for it goes
    unless it has something of its own by now (a message, a personal link)."""
    has_messages = await Message.filter(sender_id=author.id).exists()
    if not has_messages and not await SenderLink.filter(sender_id=author.id).exists():
        await author.delete()


async def existing_author(recipient: Recipient) -> Sender | None:
    """The sender row of the person replying if there is one (pages that only show or
    discard a draft must not make it)."""
    return await Sender.get_or_none(email=recipient.email.lower())


def subject_of(original: Message) -> str:
    subject = original.subject
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    return subject[:MAX_SUBJECT]


def form_for(recipient: Recipient, body: str) -> ComposeForm:
    original = recipient.message
    return ComposeForm(recipients=original.sender.email, subject=subject_of(original), body=body)


def validate(body: str) -> dict[str, list[str]]:
    if not body.strip():
        return {"body": [_("Write a reply.")]}
    if len(body) > MAX_TEXT:
        return {"body": [_("The message is too long.")]}
    if has_control_characters(body, multiline=True):
        return {"body": [_("The message contains characters that cannot be used.")]}
    return {}


async def send(
    settings: Settings,
    recipient: Recipient,
    author: Sender,
    draft_id: str | None,
    body: str,
    files: list[StoredFile],
    locale: str,
    reservation: drafts.Reservation | None = None,
    client_ip: str | None = None,
) -> Message:
    """Send the reply to the original sender (their address needs no domain check); the
    original message's audit trail gets ``reply_sent`` by ``recipient``."""
    original = recipient.message
    reply = await compose.send(
        settings,
        author,
        draft_id,
        form_for(recipient, body),
        [ParsedRecipient(original.sender.email)],
        files,
        locale,
        reservation,
        reply_to=original,
        client_ip=client_ip,
        replying=recipient,
    )
    await events.emit("reply_sent", reply=reply, original=original)
    return reply
