"""One-time codes (SMS PINs and the like): issue, show, check, resend, lock.

Only an HMAC of a code is stored (keyed with the portal's secret and the recipient, so a
leaked table is useless and a code cannot be moved between recipients); the code itself lives
only in the outbox item that delivers it, whose text is cleared once delivered. The newest
unused code of a recipient is the only valid one. Wrong answers count against the recipient
until a successful open; reaching the policy's ``max_tries`` locks the link.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from portal.context import portal
from portal.i18n import _, ngettext
from portal.models import AccessCode, OutboxItem, OutboxStatus, Recipient
from portal.services import access, clock, outbox
from portal.verification.base import Outcome, Step

if TYPE_CHECKING:
    from portal.verification.base import CodeVerificationProvider

DAY = timedelta(days=1)


def new_code(length: int) -> str:
    return str(secrets.randbelow(10**length)).zfill(length)


def code_hash(recipient_id: int, code: str) -> str:
    key = portal().settings.secret_key.encode()
    return hmac.new(key, f"{recipient_id}:{code}".encode(), hashlib.sha256).hexdigest()


def normalise(answer: str) -> str:
    """What people type: spaces and dashes between digit groups are forgiven."""
    return "".join(ch for ch in answer if not ch.isspace() and ch != "-")


async def _newest(recipient: Recipient, *, unused: bool = True) -> AccessCode | None:
    query = AccessCode.filter(recipient_id=recipient.id)
    if unused:
        query = query.filter(used_at__isnull=True)
    return await query.order_by("-created_at", "-id").first()


def _challenge(
    provider: CodeVerificationProvider,
    recipient: Recipient,
    error: str = "",
    status: int = 200,
    notice: str = "",
) -> Outcome:
    prompt = provider.prompt(recipient)
    if notice:
        prompt = dataclasses.replace(prompt, notice=notice)
    return Outcome(Step.CHALLENGE, prompt, error, status)


def _daily_limit_reached() -> Outcome:
    return Outcome(
        Step.REFUSED,
        error=_(
            "Too many codes have been requested for this message today. Try again tomorrow, "
            "or contact the sender."
        ),
        status=429,
    )


async def _issue(
    provider: CodeVerificationProvider, recipient: Recipient, locale: str
) -> Outcome | None:
    """Send a new code; an outcome when the daily limit refuses it."""
    current = clock.now()
    today = await AccessCode.filter(
        recipient_id=recipient.id, created_at__gte=current - DAY
    ).count()
    if today >= provider.policy.daily_limit:
        return _daily_limit_reached()
    code = new_code(provider.policy.length)
    async with in_transaction():
        item = await provider.deliver(recipient, code, locale)
        await AccessCode.create(
            recipient_id=recipient.id,
            code_hash=code_hash(recipient.id, code),
            created_at=current,
            expires_at=current + provider.policy.valid,
            delivery_id=item.id,
        )
    outbox.wake()
    return None


async def start(provider: CodeVerificationProvider, recipient: Recipient, locale: str) -> Outcome:
    """Open message: send a code unless one that can still be used is on its way."""
    current = await _newest(recipient)
    if current is None or current.expires_at <= clock.now():
        refused = await _issue(provider, recipient, locale)
        if refused is not None:
            return refused
    return await show(provider, recipient)


async def show(provider: CodeVerificationProvider, recipient: Recipient) -> Outcome:
    """The challenge page as it is: the prompt, and what went wrong with delivery if anything."""
    code = await _newest(recipient)
    if code is None:
        return Outcome(Step.START_OVER)
    if code.expires_at <= clock.now():
        return _challenge(provider, recipient, _expired(), 200)
    item = await OutboxItem.get_or_none(id=code.delivery_id) if code.delivery_id else None
    if item is not None and item.status == OutboxStatus.FAILED:
        return _challenge(provider, recipient, provider.delivery_failed(recipient), 200)
    if item is not None and item.status == OutboxStatus.PENDING and item.attempts > 0:
        delayed = _("Sending is delayed. We keep trying; this can take a few minutes.")
        return _challenge(provider, recipient, notice=delayed)
    return _challenge(provider, recipient)


def _expired() -> str:
    return _("The code has expired. Ask for a new one with the button below.")


async def answer(provider: CodeVerificationProvider, recipient: Recipient, raw: str) -> Outcome:
    """Check an answer in constant time; count wrong ones and lock at the limit."""
    if recipient.locked_at is not None:
        return Outcome(Step.LOCKED, status=403)
    code = await _newest(recipient)
    if code is None:
        return Outcome(Step.START_OVER)
    given = normalise(raw)
    if not given:
        return _challenge(provider, recipient, _("Enter the code."), 400)
    if code.expires_at <= clock.now():
        return _challenge(provider, recipient, _expired(), 400)
    if hmac.compare_digest(code_hash(recipient.id, given), code.code_hash):
        used = await AccessCode.filter(id=code.id, used_at__isnull=True).update(used_at=clock.now())
        if used:
            await Recipient.filter(id=recipient.id).update(failed_attempts=0)
            return Outcome.verified()
        return Outcome(Step.START_OVER)  # the same code was just used by another request
    await Recipient.filter(id=recipient.id).update(failed_attempts=F("failed_attempts") + 1)
    failed = await Recipient.filter(id=recipient.id).values_list("failed_attempts", flat=True)
    tries_left = provider.policy.max_tries - int(failed[0])  # type: ignore[call-overload]
    if tries_left <= 0:
        await access.lock(recipient)
        return Outcome(Step.LOCKED, status=403)
    text = ngettext(
        "The code is wrong. You have %(count)d try left.",
        "The code is wrong. You have %(count)d tries left.",
        tries_left,
    ) % {"count": tries_left}
    return _challenge(provider, recipient, text, 400)


async def resend(provider: CodeVerificationProvider, recipient: Recipient, locale: str) -> Outcome:
    """Send a new code, at most once per ``resend_after`` and ``daily_limit`` a day."""
    newest = await _newest(recipient, unused=False)
    if newest is not None:
        wait = newest.created_at + provider.policy.resend_after - clock.now()
        seconds = int(wait.total_seconds()) + 1
        if wait.total_seconds() > 0:
            text = ngettext(
                "You can ask for a new code in %(count)d second.",
                "You can ask for a new code in %(count)d seconds.",
                seconds,
            ) % {"count": seconds}
            return _challenge(provider, recipient, text, 429)
    refused = await _issue(provider, recipient, locale)
    if refused is not None:
        return refused
    return _challenge(provider, recipient, notice=_("A new code has been sent."))
