"""Registering a sender: validate the address, rate-limit, e-mail a personal link.

The personal link is valid for ``link_valid_days`` from its last use (a sliding window).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from enum import StrEnum

from email_validator import EmailNotValidError, validate_email
from tortoise.transactions import in_transaction

from portal import events
from portal.config import Settings
from portal.models import RegistrationEvent, Sender, SenderLink
from portal.security import hash_token, new_token
from portal.services import atomic, audit, clock, notifications, outbox, recipients


class RegistrationRefused(Exception):
    """The address is invalid or a limit was reached; ``reason`` says which."""

    class Reason(StrEnum):
        INVALID_ADDRESS = "invalid"
        ADDRESS_LIMIT = "address-limit"
        CLIENT_LIMIT = "client-limit"

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.value)
        self.reason = reason


class LinkInvalid(Exception):
    """The personal link is unknown or has expired."""

    def __init__(self, expired: bool) -> None:
        super().__init__("expired" if expired else "unknown")
        self.expired = expired


@dataclasses.dataclass(frozen=True)
class Registration:
    email: str
    new_sender: bool


def normalise_address(raw: str) -> str:
    # U+FFFD: the form had bytes that are not UTF-8; routing forms (``a%b@c``, ``a!b``,
    # quoted or ``@relay:`` addresses) would let the mail go on elsewhere.
    if "\ufffd" in raw or recipients.routing_kind(raw.strip()) is not None:
        raise RegistrationRefused(RegistrationRefused.Reason.INVALID_ADDRESS)
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        raise RegistrationRefused(RegistrationRefused.Reason.INVALID_ADDRESS) from None


async def register(settings: Settings, raw_email: str, client_ip: str, locale: str) -> Registration:
    """Create (or find) the sender and queue an e-mail with a new personal link.

    The caller shows the same page whether or not the sender existed: ``new_sender`` is for
    the ``sender_registered`` hook, never for the response.
    """
    email = normalise_address(raw_email)
    address = email.lower()
    token = new_token()
    # The counts and the new event are one atomic step under the guards of the address and
    # the client: parallel registrations cannot pass a limit together.
    async with atomic.serialized(f"registration-address:{address}", f"registration-ip:{client_ip}"):
        current = clock.now()
        per_address = await RegistrationEvent.filter(
            email=address, created_at__gte=current - timedelta(days=1)
        ).count()
        if per_address >= settings.registrations_per_address_per_day:
            raise RegistrationRefused(RegistrationRefused.Reason.ADDRESS_LIMIT)
        per_client = await RegistrationEvent.filter(
            client_ip=client_ip, created_at__gte=current - timedelta(hours=1)
        ).count()
        if per_client >= settings.registrations_per_ip_per_hour:
            raise RegistrationRefused(RegistrationRefused.Reason.CLIENT_LIMIT)
        sender, created = await Sender.get_or_create(email=address)
        await SenderLink.create(sender=sender, token_hash=hash_token(token), last_used_at=current)
        await RegistrationEvent.create(email=address, client_ip=client_ip)
        await audit.record(
            audit.Event.REGISTERED,
            sender_id=sender.id,
            actor=address,
            client_ip=client_ip,
            new_sender=created,
        )
        mail = await notifications.registration_mail(settings, email, token, locale)
        await outbox.enqueue_mail(mail)
    outbox.wake()
    await events.emit("sender_registered", email=email, new_sender=created)
    return Registration(email=email, new_sender=created)


async def sender_for(raw_email: str) -> Sender:
    """The sender of an address that a sign-in method other than the e-mailed link has
    proved (made on first sign-in); raises :class:`RegistrationRefused` for an address that
    is not one. Under the address's guard, so parallel first sign-ins make one sender."""
    address = normalise_address(raw_email).lower()
    async with atomic.serialized(f"registration-address:{address}"):
        sender, _created = await Sender.get_or_create(email=address)
    return sender


async def _valid_link(settings: Settings, token: str) -> SenderLink:
    link = await SenderLink.get_or_none(token_hash=hash_token(token)).prefetch_related("sender")
    if link is None:
        raise LinkInvalid(expired=False)
    if link.last_used_at < clock.now() - timedelta(days=settings.link_valid_days):
        raise LinkInvalid(expired=True)
    return link


async def link_owner(settings: Settings, token: str) -> Sender:
    """The sender of a valid personal link, changing nothing (what GET shows)."""
    return (await _valid_link(settings, token)).sender


async def authenticate(settings: Settings, token: str, client_ip: str | None = None) -> Sender:
    """Sign in with a personal link (the POST): using it slides its validity forward (and
    goes to the audit trail with it)."""
    link = await _valid_link(settings, token)
    async with in_transaction():
        await SenderLink.filter(id=link.id).update(last_used_at=clock.now())
        await audit.record(
            audit.Event.LINK_USED,
            sender_id=link.sender.id,
            actor=link.sender.email,
            client_ip=client_ip,
        )
    return link.sender


def masked_address(email: str) -> str:
    """``a•••@example.com``: enough for its owner to recognise, little for anyone else."""
    local, _at, domain = email.rpartition("@")
    return f"{local[:1]}•••@{domain}"
