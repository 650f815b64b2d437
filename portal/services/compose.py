"""Drafts, sending and cancelling.

A draft keeps what the sender typed and the files already uploaded when a form comes back
with errors, so nothing is lost. Sending writes the message, its recipients, its attachments,
the notification e-mails, its signed receipt and the e-mail that carries the receipt to the
sender in one transaction.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid

from portal import events, rules
from portal.config import Settings
from portal.context import portal
from portal.i18n import _
from portal.models import (
    Attachment,
    Message,
    MessageStatus,
    Recipient,
    ScanState,
    Sender,
    Upload,
)
from portal.security import hash_token, new_token
from portal.services import (
    audit,
    clock,
    drafts,
    message_fields,
    notifications,
    outbox,
    receipts,
    scanning,
)
from portal.services.files import safe_filename
from portal.services.recipients import ParsedRecipient, parse_recipients
from portal.services.text import has_control_characters
from portal.services.uploads import StoredFile, abort_stored
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


async def validate(settings: Settings, form: ComposeForm, sender_email: str) -> Validated:
    """Check the form; errors are translated messages keyed by field name.

    The recipients are parsed, then put to the recipient policies (the allowed domains
    unless a plugin decides first), and each gets its verification provider.
    """
    errors: dict[str, list[str]] = {}
    parsed = parse_recipients(
        form.recipients,
        phone_suffix=settings.phone_suffix,
        max_recipients=settings.max_recipients,
        sms_regions=settings.sms_allowed_regions,
    )
    current = portal()
    accepted, refused = await rules.check_recipients(
        current.pm, settings, parsed.recipients, sender_email
    )
    parsed.errors += refused
    parsed.recipients = []
    for recipient in accepted:
        try:
            verification = rules.choose_verification(
                current.pm, settings, current.providers.verification, recipient
            )
        except rules.VerificationUnavailable as unavailable:
            parsed.errors.append(unavailable.reason)
            continue
        parsed.recipients.append(dataclasses.replace(recipient, verification=verification))
    if parsed.errors:
        errors["recipients"] = parsed.errors
    if not form.subject:
        errors["subject"] = [_("Enter a subject.")]
    elif len(form.subject) > MAX_SUBJECT:
        errors["subject"] = [
            _("The subject can be at most %(count)d characters.") % {"count": MAX_SUBJECT}
        ]
    elif has_control_characters(form.subject, multiline=False):
        errors["subject"] = [_("The subject contains characters that cannot be used.")]
    if len(form.body) > MAX_TEXT:
        errors["body"] = [_("The message is too long.")]
    elif has_control_characters(form.body, multiline=True):
        errors["body"] = [_("The message contains characters that cannot be used.")]
    if len(form.signature) > MAX_TEXT:
        errors["signature"] = [_("The signature is too long.")]
    elif has_control_characters(form.signature, multiline=True):
        errors["signature"] = [_("The signature contains characters that cannot be used.")]
    return Validated(errors, parsed.recipients)


class UploadsUnfinished(Exception):
    """Send was refused: files of the draft are still being uploaded."""


async def save_draft(
    sender_id: int,
    draft_id: str | None,
    form: ComposeForm,
    files: list[StoredFile],
    locale: str,
    reservation: drafts.Reservation | None = None,
) -> Message:
    """Keep the form and newly uploaded files on the draft (made when there is none).

    Raises :class:`drafts.DraftClosed` when the draft was sent meanwhile (the caller deletes
    ``files``); ``reservation`` is released in the same step as the files are attached.
    """
    async with drafts.editing(sender_id, draft_id, locale, reservation=reservation) as draft:
        _apply(draft, form, locale)
        await message_fields.save(draft, FORM_FIELDS)
        attached = await _attach(draft, files)
    scanning.check_soon(attached)
    return draft


FORM_FIELDS = ["recipients_text", "subject", "body", "signature", "read_receipt", "locale"]


def _storable(text: str) -> str:
    """Text as a draft keeps it even when the form was refused: no NUL (PostgreSQL cannot
    store it in text columns)."""
    return text.replace("\x00", "\ufffd")


def _apply(draft: Message, form: ComposeForm, locale: str) -> None:
    draft.recipients_text = _storable(form.recipients)
    draft.subject = _storable(form.subject[:MAX_SUBJECT])
    draft.body = _storable(form.body)
    draft.signature = _storable(form.signature)
    draft.read_receipt = form.read_receipt
    draft.locale = locale


async def attach(
    message_id: uuid.UUID, stored: StoredFile, upload_id: uuid.UUID | None = None
) -> Attachment:
    """Record a stored file as an attachment (``upload_id``: the chunked upload it came from).

    Only inside :func:`drafts.editing` of the message: that is what keeps a sent message from
    getting new attachments.
    """
    return await message_fields.create(
        Attachment,
        message_id=message_id,
        filename=safe_filename(stored.filename),
        content_type=stored.content_type,
        storage_key=stored.storage_key,
        size=stored.size,
        crc32=stored.crc32,
        sha256=stored.sha256,
        crypto_header=stored.crypto_header,
        upload_id=upload_id,
    )


async def _attach(draft: Message, files: list[StoredFile]) -> list[Attachment]:
    return [await attach(draft.id, stored) for stored in files]


async def send(
    settings: Settings,
    sender: Sender,
    draft_id: str | None,
    form: ComposeForm,
    recipients: list[ParsedRecipient],
    files: list[StoredFile],
    locale: str,
    reservation: drafts.Reservation | None = None,
    reply_to: Message | None = None,
    *,
    client_ip: str | None = None,
    replying: Recipient | None = None,
) -> Message:
    """Turn the draft into a sent message with recipients, attachments and notifications, at
    once and exactly once.

    Under the sender's guard: a draft that was sent meanwhile raises
    :class:`drafts.DraftClosed` (a second Send in parallel makes no second message), a draft
    with unfinished uploads raises :class:`UploadsUnfinished`. ``reply_to`` makes it a secure
    reply to that message (its notification says so) by its recipient ``replying``.
    The audit trail gets ``sent`` (and the answered message ``reply_sent``) in the same
    transaction. With a malware scanner the recipients' notifications are queued held, and
    the message waits in ``checking`` until :mod:`portal.services.scanning` lets them go.
    """
    held = scanning.holds_notifications()
    async with drafts.editing(sender.id, draft_id, locale, reservation=reservation) as message:
        if await Upload.filter(message_id=message.id).exists():
            raise UploadsUnfinished()
        _apply(message, form, locale)
        message.status = MessageStatus.SENT
        message.sent_at = clock.now()
        message.reply_to = reply_to
        if held:
            message.scan_state = ScanState.CHECKING
            message.scan_next_at = message.sent_at
        await message_fields.save(
            message,
            [
                *FORM_FIELDS,
                "status",
                "sent_at",
                "reply_to_id",
                "scan_state",
                "scan_next_at",
            ],
        )
        await _attach(message, files)
        for parsed in recipients:
            token = new_token()
            mail = await notifications.message_notification(
                settings,
                parsed.email,
                sender.email,
                token,
                sent_at=message.sent_at,
                reply=reply_to is not None,
            )
            await message_fields.create(
                Recipient,
                message=message,
                email=parsed.email,
                phone=parsed.phone,
                verification=parsed.verification or settings.verification,
                token_hash=hash_token(token),
                notification=await outbox.enqueue_mail(mail, message_ref=message.id, held=held),
            )
        receipt = await receipts.issue(settings, message, sender.email, receipts.portal_key())
        await outbox.enqueue_mail(
            await notifications.submission_receipt(
                settings, sender.email, locale, receipt, message.sent_at
            ),
            message_ref=message.id,
        )
        await _audit_sent(message, sender, len(recipients), client_ip, reply_to, replying)
    outbox.wake()
    if held:
        scanning.wake()
    await message.fetch_related("recipients", "attachments")
    await message_fields.open_message(message)
    await events.emit("message_sent", message=message)
    return message


async def _audit_sent(
    message: Message,
    sender: Sender,
    recipients: int,
    client_ip: str | None,
    reply_to: Message | None,
    replying: Recipient | None,
) -> None:
    """``sent`` for the message (and ``reply_sent`` for the one it answers): counts and ids
    only, never the subject, text or file names."""
    await audit.record(
        audit.Event.SENT,
        message_id=message.id,
        sender_id=sender.id,
        actor=sender.email,
        client_ip=client_ip,
        recipients=recipients,
        attachments=await Attachment.filter(message_id=message.id).count(),
        reply=reply_to is not None,
    )
    if reply_to is not None:
        await audit.record(
            audit.Event.REPLY_SENT,
            message_id=reply_to.id,
            actor=audit.recipient_actor(replying.id) if replying is not None else sender.email,
            client_ip=client_ip,
            reply=str(message.id),
        )


async def remove_attachment(
    storage: StorageBackend, sender_id: int, draft_id: str | None, attachment_id: int
) -> bool:
    """Remove a file from the sender's draft (never from a sent message)."""
    try:
        async with drafts.editing(sender_id, draft_id, create=False) as draft:
            attachment = await Attachment.get_or_none(id=attachment_id, message_id=draft.id)
            if attachment is None:
                return False
            await attachment.delete()
    except drafts.DraftClosed:
        return False
    await _delete_stored(storage, [attachment.storage_key], "remove")
    return True


async def discard(storage: StorageBackend, sender_id: int, draft_id: str | None) -> bool:
    """Cancel: delete the draft, every file uploaded for it and its unfinished uploads.

    A draft that was sent meanwhile is left alone (False).
    """
    try:
        async with drafts.editing(sender_id, draft_id, create=False) as draft:
            uploads = list(await Upload.filter(message_id=draft.id))
            keys = await Attachment.filter(message_id=draft.id).values_list(
                "storage_key", flat=True
            )
            await draft.delete()  # its attachments and uploads go with it (cascade)
    except drafts.DraftClosed:
        return False
    for upload in uploads:
        await abort_stored(storage, upload)
    await _delete_stored(storage, [str(key) for key in keys], "cancel")
    return True


async def _delete_stored(storage: StorageBackend, keys: list[str], why: str) -> None:
    for key in keys:
        try:
            await storage.delete(key)
        except Exception:
            log.exception("%s: could not delete stored file %s; delete it by hand", why, key)


async def expire_drafts(settings: Settings, storage: StorageBackend) -> int:
    """Delete drafts older than ``draft_hours`` with their files; return how many."""
    count = 0
    for draft in await drafts.expired(settings):
        count += await discard(storage, draft.sender_id, str(draft.id))  # type: ignore[attr-defined]
    if count:
        log.info("deleted %d expired draft(s)", count)
    return count


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
        await message_fields.open_message(message)
    return message
