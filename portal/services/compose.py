"""Drafts, sending and cancelling.

A draft keeps what the sender typed and the files already uploaded when a form comes back
with errors, so nothing is lost. Sending writes the message, its recipients, its attachments
and the notification e-mails in one transaction.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid

from tortoise.transactions import in_transaction

from portal.config import Settings
from portal.i18n import _
from portal.models import Attachment, Message, MessageStatus, Recipient, Sender
from portal.security import hash_token, new_token
from portal.services import clock, notifications, outbox
from portal.services.files import safe_filename
from portal.services.recipients import ParsedRecipient, parse_recipients
from portal.services.uploads import StoredFile
from portal.storage.base import StorageBackend

log = logging.getLogger(__name__)

MAX_SUBJECT = 255
MAX_TEXT = 1_000_000


@dataclasses.dataclass
class ComposeForm:
    recipients: str = ""
    subject: str = ""
    body: str = ""
    signature: str = ""
    read_receipt: bool = False

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> ComposeForm:
        return cls(
            recipients=fields.get("recipients", ""),
            subject=fields.get("subject", "").strip(),
            body=fields.get("body", "").replace("\r\n", "\n"),
            signature=fields.get("signature", "").replace("\r\n", "\n"),
            read_receipt=fields.get("read_receipt") in ("1", "on", "true"),
        )

    @classmethod
    def from_draft(cls, draft: Message) -> ComposeForm:
        return cls(
            draft.recipients_text, draft.subject, draft.body, draft.signature, draft.read_receipt
        )


@dataclasses.dataclass
class Validated:
    errors: dict[str, list[str]]
    recipients: list[ParsedRecipient]


def validate(settings: Settings, form: ComposeForm) -> Validated:
    """Check the form; errors are translated messages keyed by field name."""
    errors: dict[str, list[str]] = {}
    parsed = parse_recipients(
        form.recipients,
        allowed_domains=settings.allowed_recipient_domains,
        phone_suffix=settings.phone_suffix,
        max_recipients=settings.max_recipients,
    )
    if parsed.errors:
        errors["recipients"] = parsed.errors
    if not form.subject:
        errors["subject"] = [_("Enter a subject.")]
    elif len(form.subject) > MAX_SUBJECT:
        errors["subject"] = [
            _("The subject can be at most %(count)d characters.") % {"count": MAX_SUBJECT}
        ]
    if len(form.body) > MAX_TEXT:
        errors["body"] = [_("The message is too long.")]
    if len(form.signature) > MAX_TEXT:
        errors["signature"] = [_("The signature is too long.")]
    return Validated(errors, parsed.recipients)


async def get_draft(sender_id: int, draft_id: str | None) -> Message | None:
    if not draft_id:
        return None
    try:
        uuid.UUID(draft_id)
    except ValueError:
        return None
    return await Message.get_or_none(id=draft_id, sender_id=sender_id, status=MessageStatus.DRAFT)


async def attached_bytes(draft: Message | None) -> int:
    if draft is None:
        return 0
    sizes = await Attachment.filter(message_id=draft.id).values_list("size", flat=True)
    return sum(int(size) for size in sizes)  # type: ignore[call-overload]


async def save_draft(
    sender_id: int, draft: Message | None, form: ComposeForm, files: list[StoredFile], locale: str
) -> Message:
    """Keep the form and newly uploaded files on the draft (made when there is none)."""
    async with in_transaction():
        if draft is None:
            draft = await Message.create(sender_id=sender_id, locale=locale)
        _apply(draft, form, locale)
        await draft.save()
        await _attach(draft, files)
    return draft


def _apply(draft: Message, form: ComposeForm, locale: str) -> None:
    draft.recipients_text = form.recipients
    draft.subject = form.subject[:MAX_SUBJECT]
    draft.body = form.body
    draft.signature = form.signature
    draft.read_receipt = form.read_receipt
    draft.locale = locale


async def attach(
    message_id: uuid.UUID, stored: StoredFile, upload_id: uuid.UUID | None = None
) -> Attachment:
    """Record a stored file as an attachment (``upload_id``: the chunked upload it came from)."""
    return await Attachment.create(
        message_id=message_id,
        filename=safe_filename(stored.filename),
        content_type=stored.content_type,
        storage_key=stored.storage_key,
        size=stored.size,
        crc32=stored.crc32,
        sha256=stored.sha256,
        upload_id=upload_id,
    )


async def _attach(draft: Message, files: list[StoredFile]) -> None:
    for stored in files:
        await attach(draft.id, stored)


async def send(
    settings: Settings,
    sender: Sender,
    draft: Message | None,
    form: ComposeForm,
    recipients: list[ParsedRecipient],
    files: list[StoredFile],
    locale: str,
    reply_to: Message | None = None,
) -> Message:
    """Store the message with recipients and attachments and queue notifications, at once.

    ``reply_to`` makes it a secure reply to that message (its notification says so).
    """
    async with in_transaction():
        message = draft or await Message.create(sender_id=sender.id, locale=locale)
        _apply(message, form, locale)
        message.status = MessageStatus.SENT
        message.sent_at = clock.now()
        message.reply_to = reply_to
        await message.save()
        await _attach(message, files)
        for parsed in recipients:
            token = new_token()
            mail = await notifications.message_notification(
                settings, parsed.email, sender.email, token, reply=reply_to is not None
            )
            await Recipient.create(
                message=message,
                email=parsed.email,
                phone=parsed.phone,
                verification=settings.phone_verification if parsed.phone else settings.verification,
                token_hash=hash_token(token),
                notification=await outbox.enqueue_mail(mail),
            )
    outbox.wake()
    await message.fetch_related("recipients", "attachments")
    return message


async def remove_attachment(storage: StorageBackend, draft: Message, attachment_id: int) -> bool:
    attachment = await Attachment.get_or_none(id=attachment_id, message_id=draft.id)
    if attachment is None:
        return False
    await attachment.delete()
    await storage.delete(attachment.storage_key)
    return True


async def discard(storage: StorageBackend, draft: Message | None) -> None:
    """Cancel: delete the draft, every file uploaded for it and its unfinished uploads."""
    if draft is None:
        return
    from portal.services import chunked  # chunked builds on this module

    await chunked.abort_all(storage, draft)
    keys = await Attachment.filter(message_id=draft.id).values_list("storage_key", flat=True)
    await draft.delete()
    for key in keys:
        try:
            await storage.delete(str(key))
        except Exception:
            log.exception("cancel: could not delete stored file %s; delete it by hand", key)


async def sent_message(sender_id: int, message_id: str) -> Message | None:
    """A sent message of this sender, with recipients and attachments; None for any other."""
    try:
        uuid.UUID(message_id)
    except ValueError:
        return None
    message = await Message.get_or_none(
        id=message_id, sender_id=sender_id, status=MessageStatus.SENT
    )
    if message is not None:
        await message.fetch_related("recipients", "attachments", "sender")
    return message
