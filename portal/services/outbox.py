"""Queue e-mails and SMS in the database and deliver them in the background, with retries.

Queued items are written inside the caller's transaction, so a message and its notifications
are stored together or not at all. An SMTP outage delays delivery; nothing is lost. Items that
keep failing end as ``failed``, logged as errors, listed by ``sinetti outbox`` and queued again
by ``sinetti outbox retry``.

The text of an item carries secrets: a notification's personal link, an SMS's PIN. While the
item waits, its text and html are sealed (:mod:`portal.services.sealing`, a key derived from
``PORTAL_SECRET_KEY``), so a copy of the database holds no working link or PIN; the worker opens
them right before handing them to the transport. Once an item is sent, its text and html are
cleared: what stays for operators is the address, subject, status and an error from which the
text was cut out. A failed item keeps them sealed until it is retried or purged. Read an
item's text with :func:`opened_text`.

Delivery survives crashes and slow servers (issue 10):

- A worker *claims* an item before it delivers it: one conditional UPDATE sets
  ``claimed_until`` and a random ``claim_token`` (and counts the attempt), so of many workers
  in many processes exactly one gets it. The claim lasts one delivery's timeout plus
  :data:`CLAIM_MARGIN_SECONDS`; the worker records the outcome with an UPDATE on its own token,
  which also releases the claim at once. A worker killed mid-delivery leaves a claim that
  expires within that time, and the item is delivered again.
- Such a second delivery is recognisable as the same mail: an e-mail's ``Message-ID`` is
  chosen when it is queued and stored on the item (``mail_message_id``), and every delivery of
  it carries that header.
- Each delivery runs under a timeout; the background worker (:mod:`portal.services.outbox_lanes`)
  delivers e-mail and SMS in separate lanes, several at a time.
- An item that used up its attempts (or was refused) is ``failed`` but keeps its sealed text,
  so an operator can queue it again (:func:`portal.services.outbox_admin.retry`). Only an
  item that can never be delivered (sealed with another secret key) is cleared at once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import uuid
from collections.abc import Sequence
from datetime import timedelta
from email.utils import make_msgid

import phonenumbers
from quart import has_app_context
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from portal.context import portal
from portal.mail.base import MailTransport, OutgoingMail
from portal.models import Channel, OutboxItem, OutboxStatus
from portal.services import atomic, audit, clock
from portal.services.recipients import mask_phone
from portal.services.sealing import Sealer, SealError
from portal.sms.base import SmsGateway

log = logging.getLogger(__name__)

#: How long one delivery may take unless the settings say otherwise.
DELIVERY_TIMEOUT_SECONDS = 30
#: A claim outlives the delivery's timeout by this much (recording the outcome, a slow database)
#: unless the settings say otherwise (``PORTAL_OUTBOX_CLAIM_MARGIN_SECONDS``).
CLAIM_MARGIN_SECONDS = 30
#: The back-off after a first failed attempt unless the settings say otherwise
#: (``PORTAL_OUTBOX_RETRY_SECONDS``); it doubles with each attempt, up to an hour.
RETRY_SECONDS = 10
BATCH = 20
MAX_BACKOFF_SECONDS = 3600


def _sealer(secret_key: str | None = None) -> Sealer:
    """The outbox's sealer: of ``secret_key``, or of the current app's settings."""
    if secret_key is None:
        secret_key = portal().settings.secret_key
    return Sealer(secret_key)


#: The context of a sealed SMS number (``to_address``).
ADDRESS_CONTEXT = "outbox to_address sms"


def _context(column: str, channel: Channel | str, to_address: str) -> str:
    """What a sealed value belongs to: it opens only in the same column of an item of the
    same channel and address, so it cannot be moved to an item with another recipient."""
    return f"outbox {column} {Channel(channel).value} {to_address}"


def new_message_id() -> str:
    """A fresh ``Message-ID`` in the domain of the portal's sender address."""
    domain = portal().settings.mail_from.rpartition("@")[2] or "localhost"
    return make_msgid(domain=domain)


async def enqueue_mail(
    mail: OutgoingMail, *, message_ref: uuid.UUID | None = None, held: bool = False
) -> OutboxItem:
    """Queue ``mail`` (plain text and html; they are sealed before they are stored). Its
    ``Message-ID`` is fixed now (``mail.message_id`` or a new one): every delivery carries it.
    ``message_ref``: the message it notifies about (its outcome goes to the audit trail).
    ``held``: not delivered until :func:`release_held` (the message's malware check)."""
    sealer = _sealer()
    current = clock.now()
    return await OutboxItem.create(
        status=OutboxStatus.HELD if held else OutboxStatus.PENDING,
        channel=Channel.EMAIL,
        to_address=mail.to,
        subject=mail.subject,
        text=sealer.seal(mail.text, _context("text", Channel.EMAIL, mail.to)),
        html=None
        if mail.html is None
        else sealer.seal(mail.html, _context("html", Channel.EMAIL, mail.to)),
        mail_message_id=mail.message_id or new_message_id(),
        message_ref=message_ref,
        next_attempt_at=current,
        created_at=current,
    )


async def enqueue_sms(to: str, text: str, *, message_ref: uuid.UUID | None = None) -> OutboxItem:
    """Queue an SMS of plain ``text`` to the number ``to`` (both sealed before they are
    stored: a phone number is as confidential as the message); ``message_ref`` as for
    :func:`enqueue_mail`."""
    sealer = _sealer()
    address = sealer.seal(to, ADDRESS_CONTEXT)
    current = clock.now()
    return await OutboxItem.create(
        channel=Channel.SMS,
        to_address=address,
        text=sealer.seal(text, _context("text", Channel.SMS, address)),
        message_ref=message_ref,
        next_attempt_at=current,
        created_at=current,
    )


async def release_held(message_id: uuid.UUID) -> int:
    """Let the held mails of the message go (its check found it clean); how many."""
    return await OutboxItem.filter(message_ref=message_id, status=OutboxStatus.HELD).update(
        status=OutboxStatus.PENDING, next_attempt_at=clock.now()
    )


async def drop_held(message_id: uuid.UUID) -> int:
    """Delete the held mails of the message, never to be sent (its check found malware)."""
    return await OutboxItem.filter(message_ref=message_id, status=OutboxStatus.HELD).delete()


def address_of(item: OutboxItem, secret_key: str | None = None) -> str:
    """Where ``item`` goes: an e-mail address as stored, an SMS's number opened (see
    :func:`opened_text`)."""
    if item.channel != Channel.SMS:
        return item.to_address
    return _sealer(secret_key).open(item.to_address, ADDRESS_CONTEXT)


def shown_address(item: OutboxItem, secret_key: str | None = None) -> str:
    """Where ``item`` goes, for logs and operators: an SMS's number masked (or unknown when
    another secret key sealed it); ``secret_key`` as for :func:`opened_text`."""
    if item.channel != Channel.SMS:
        return item.to_address
    try:
        return mask_phone(address_of(item, secret_key))
    except SealError:
        return "(sealed with another secret key)"


def opened_text(item: OutboxItem, secret_key: str | None = None) -> str:
    """The plain text of ``item`` (empty once it ended), with the current app's key unless
    ``secret_key`` is given. Raises :class:`~portal.services.sealing.SealError` when the
    text does not open with that key."""
    return _sealer(secret_key).open(item.text, _context("text", item.channel, item.to_address))


def opened_html(item: OutboxItem, secret_key: str | None = None) -> str | None:
    """The plain html of ``item`` (None when it has none or ended); see :func:`opened_text`."""
    if item.html is None:
        return None
    return _sealer(secret_key).open(item.html, _context("html", item.channel, item.to_address))


def _number_forms(item: OutboxItem, address: str) -> list[str]:
    """The forms in which a gateway may quote an SMS's number: as given (E.164) and without
    its country code (``+358401234567``: ``401234567``, inside ``0401234567``)."""
    if item.channel != Channel.SMS:
        return []
    try:
        national = str(phonenumbers.parse(address).national_number)
    except phonenumbers.NumberParseException:
        return [address]
    return [address, national]


def _scrubbed(error: str, *plain: str | None) -> str:
    """``error`` without the item's text: a transport may quote what it was given (an SMS
    gateway echoing the body, a mail server the link), and the error outlives the text."""
    secrets: set[str] = set()
    for text in filter(None, plain):
        if len(text) >= 8:  # a shorter text would cut letters out of the error itself
            secrets.add(text)
        secrets.update(re.findall(r"\S*/[sm]/[A-Za-z0-9_-]+", text))  # personal links
        secrets.update(re.findall(r"[A-Za-z0-9_-]{16,}", text))  # tokens in any form
        secrets.update(re.findall(r"\d{4,}", text))  # PINs
    for secret in sorted(secrets, key=len, reverse=True):
        if secret.strip():
            error = error.replace(secret, "[…]")
    return error


def wake() -> None:
    """Ask the app's background worker to look at the outbox now (after a commit)."""
    if has_app_context():
        portal().outbox_wake.set()


def backoff(attempts: int, first_seconds: float = RETRY_SECONDS) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: ``first_seconds``, doubling."""
    return timedelta(seconds=min(first_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


def claim_time(timeout_seconds: float, margin_seconds: float = CLAIM_MARGIN_SECONDS) -> timedelta:
    """How long a claim lasts: one delivery's timeout and a margin."""
    return timedelta(seconds=timeout_seconds + margin_seconds)


def _unclaimed(current: object) -> Q:
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=current)


async def claim_due(
    channels: Sequence[Channel], limit: int, claim_for: timedelta
) -> list[OutboxItem]:
    """Claim up to ``limit`` due items of ``channels`` for this worker, oldest first.

    Each claim is one conditional UPDATE (the item still pending, due and unclaimed) that also
    counts the attempt, so an item whose deliveries keep crashing the worker still runs out of
    attempts. The items come back with their ``claim_token``."""
    if limit < 1:
        return []  # (a query's limit of 0 would mean no limit)
    current = clock.now()
    candidates = (
        await OutboxItem.filter(
            status=OutboxStatus.PENDING, next_attempt_at__lte=current, channel__in=list(channels)
        )
        .filter(_unclaimed(current))
        .order_by("id")
        .limit(limit)
        .values_list("id", flat=True)
    )
    claimed: list[OutboxItem] = []
    for item_id in candidates:
        token = secrets.token_hex(16)
        taken = await (
            OutboxItem.filter(id=item_id, status=OutboxStatus.PENDING, next_attempt_at__lte=current)
            .filter(_unclaimed(current))
            .update(
                claimed_until=current + claim_for, claim_token=token, attempts=F("attempts") + 1
            )
        )
        item = await OutboxItem.get_or_none(id=item_id, claim_token=token) if taken else None
        if item is not None:
            claimed.append(item)
    return claimed


async def deliver_due(
    mail: MailTransport,
    sms: SmsGateway,
    max_attempts: int,
    *,
    timeout_seconds: float = DELIVERY_TIMEOUT_SECONDS,
    channels: Sequence[Channel] = tuple(Channel),
) -> int:
    """Claim up to :data:`BATCH` due items and deliver them concurrently; return how many
    were delivered (one round, for tests and tools; the server runs the lanes)."""
    items = await claim_due(channels, BATCH, claim_time(timeout_seconds))
    outcomes = await asyncio.gather(
        *(deliver(item, mail, sms, max_attempts, timeout_seconds) for item in items)
    )
    return sum(outcomes)


async def _record(item: OutboxItem, *, ended: bool | None = None, **changes: object) -> bool:
    """Write the outcome of this worker's delivery and release its claim, but only while the
    claim is still this worker's: one that expired may be another worker's now. ``ended``
    (True delivered, False failed for good) also goes to the audit trail, in the same
    transaction, when the item belongs to a message. A cancellation (the server stopping)
    waits until it is recorded: the delivery happened."""
    recorded = await atomic.to_the_end(_write_outcome(item, ended, changes))
    if not recorded:
        log.warning(
            "outbox item %s (%s to %s): the claim expired during delivery; another worker"
            " took it over and records the outcome",
            item.id,
            item.channel,
            shown_address(item),
        )
    return bool(recorded)


async def _write_outcome(item: OutboxItem, ended: bool | None, changes: dict[str, object]) -> int:
    async with in_transaction():
        recorded = await OutboxItem.filter(id=item.id, claim_token=item.claim_token).update(
            claimed_until=None, claim_token=None, **changes
        )
        if recorded and ended is not None:
            await audit.record_delivery(item, delivered=ended)
    return recorded


async def deliver(
    item: OutboxItem,
    mail: MailTransport,
    sms: SmsGateway,
    max_attempts: int,
    timeout_seconds: float = DELIVERY_TIMEOUT_SECONDS,
    retry_seconds: float = RETRY_SECONDS,
) -> int:
    """Deliver one claimed ``item`` (from :func:`claim_due`) within ``timeout_seconds`` and
    record the outcome (a failed attempt is retried after :func:`backoff` of
    ``retry_seconds``); return 1 if it was delivered, else 0. Never raises (but for a
    cancellation, which leaves the claim to expire)."""
    if item.attempts > max_attempts:
        # Only claims whose worker died before it recorded anything get here: an item that
        # takes its worker down with it must not be tried forever.
        error = f"gave up after {item.attempts - 1} attempts; the worker stopped during some"
        log.error(
            "outbox item %s (%s to %s): %s", item.id, item.channel, shown_address(item), error
        )
        await _record(item, ended=False, status=OutboxStatus.FAILED, last_error=error)
        return 0
    try:
        text, html, address = opened_text(item), opened_html(item), address_of(item)
    except SealError:
        # Another secret key sealed it (PORTAL_SECRET_KEY changed while it waited): retrying
        # cannot help, and the text is unreadable to anyone now.
        error = "SealError: the text does not open with this PORTAL_SECRET_KEY"
        log.error(
            "outbox item %s (%s to %s): %s", item.id, item.channel, shown_address(item), error
        )
        await _record(
            item, ended=False, status=OutboxStatus.FAILED, text="", html=None, last_error=error
        )
        return 0
    try:
        async with asyncio.timeout(timeout_seconds) as limit:
            if item.channel == Channel.EMAIL:
                await mail.send(
                    OutgoingMail(
                        item.to_address,
                        item.subject,
                        text,
                        html,
                        message_id=item.mail_message_id or None,
                    )
                )
            else:
                await sms.send(address, text)
    except Exception as exc:
        if isinstance(exc, TimeoutError) and limit.expired():
            error = f"TimeoutError: no answer within {timeout_seconds:g} s"
        else:
            error = _scrubbed(
                f"{type(exc).__name__}: {exc}", text, html, *_number_forms(item, address)
            )[:2000]
        permanent = bool(getattr(exc, "permanent", False))
        await _failed(item, error, permanent, max_attempts, retry_seconds)
        return 0
    # Once delivered, an SMS keeps only the end of its number: the sealed number would outlive
    # its message's purge (it is sealed with the secret key, not the message's key).
    masked = {"to_address": mask_phone(address)} if item.channel == Channel.SMS else {}
    await _record(
        item,
        ended=True,
        status=OutboxStatus.SENT,
        sent_at=clock.now(),
        text="",
        html=None,
        **masked,
    )
    return 1


async def _failed(
    item: OutboxItem, error: str, permanent: bool, max_attempts: int, retry_seconds: float
) -> None:
    """Record a failed attempt: retried after a back-off, or failed for good (its sealed text
    kept, so an operator can queue it again once the cause is fixed)."""
    if permanent or item.attempts >= max_attempts:
        log.error(
            "outbox item %s (%s to %s) failed for good after %d attempts: %s",
            item.id,
            item.channel,
            shown_address(item),
            item.attempts,
            error,
        )
        await _record(item, ended=False, status=OutboxStatus.FAILED, last_error=error)
        return
    next_attempt_at = clock.now() + backoff(item.attempts, retry_seconds)
    log.warning(
        "outbox item %s (%s to %s) attempt %d failed, retrying at %s: %s",
        item.id,
        item.channel,
        shown_address(item),
        item.attempts,
        next_attempt_at.isoformat(timespec="seconds"),
        error,
    )
    await _record(item, next_attempt_at=next_attempt_at, last_error=error)


async def summary() -> dict[str, int]:
    """Counts per status, for operators."""
    return {status.value: await OutboxItem.filter(status=status).count() for status in OutboxStatus}
