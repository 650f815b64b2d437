"""One-time codes (SMS PINs and the like): issue, show, check, resend, lock.

Only an HMAC of a code is stored (keyed with the portal's secret and the recipient, so a
leaked table is useless and a code cannot be moved between recipients); the code itself lives
only in the outbox item that delivers it, whose text is cleared once delivered. The newest
unused code of a recipient is the only valid one. Wrong answers count against the recipient
until a successful open; reaching the policy's ``max_tries`` locks the link.

A code's validity runs from its *delivery*, not its issue (:func:`expiry`): while its SMS waits
in the outbox (a gateway outage) the code does not expire and the page says it is on its way;
once the gateway took it, it is valid for the policy's ``valid`` from then. ``expires_at`` is
the expiry had it been delivered at once, the earliest it can be.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tortoise.expressions import F

from portal import events
from portal.context import portal
from portal.i18n import _, ngettext
from portal.models import AccessCode, OutboxItem, OutboxStatus, Recipient
from portal.services import access, atomic, audit, clock, outbox
from portal.verification.base import Outcome, Problem, Step

if TYPE_CHECKING:
    from portal.verification.codes import CodeVerificationProvider

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
    problem: Problem = Problem.NONE,
    notice: str = "",
) -> Outcome:
    prompt = provider.prompt(recipient)
    if notice:
        prompt = dataclasses.replace(prompt, notice=notice)
    return Outcome(Step.CHALLENGE, prompt, error, problem)


def _daily_limit_reached() -> Outcome:
    return Outcome(
        Step.REFUSED,
        error=_(
            "Too many codes have been requested for this message today. Try again tomorrow, "
            "or contact the sender."
        ),
        problem=Problem.LIMIT,
    )


def _guard(recipient: Recipient) -> str:
    return f"recipient:{recipient.id}"


async def _locked_now(recipient: Recipient) -> bool:
    """Whether the link is locked, read inside the recipient's guard (not from ``recipient``,
    which may have been loaded before another request locked it)."""
    locked = await Recipient.filter(id=recipient.id, locked_at__isnull=False).exists()
    if locked and recipient.locked_at is None:
        recipient.locked_at = clock.now()
    return locked


async def _delivery(code: AccessCode) -> OutboxItem | None:
    return await OutboxItem.get_or_none(id=code.delivery_id) if code.delivery_id else None


def expiry(code: AccessCode, delivery: OutboxItem | None, valid: timedelta) -> datetime | None:
    """When ``code`` stops being valid: ``valid`` after its delivery; None while it is still on
    its way (it cannot expire before the recipient could have it)."""
    if delivery is None or delivery.status == OutboxStatus.FAILED:
        return code.expires_at
    if delivery.status == OutboxStatus.PENDING:
        return None
    delivered_at = delivery.sent_at or code.created_at
    return max(code.expires_at, delivered_at + valid)


async def _has_expired(code: AccessCode, provider: CodeVerificationProvider) -> bool:
    ends = expiry(code, await _delivery(code), provider.policy.valid)
    return ends is not None and ends <= clock.now()


async def _issue(
    provider: CodeVerificationProvider, recipient: Recipient, locale: str
) -> Outcome | None:
    """Send a new code; an outcome when the daily limit refuses it.

    Runs inside the recipient's guard (see :func:`start` and :func:`resend`): the count of
    today's codes and the new code are one atomic step, so parallel requests cannot pass the
    daily limit together.
    """
    current = clock.now()
    today = await AccessCode.filter(
        recipient_id=recipient.id, created_at__gte=current - DAY
    ).count()
    if today >= provider.policy.daily_limit:
        return _daily_limit_reached()
    code = new_code(provider.policy.length)
    item = await provider.deliver(recipient, code, locale)
    # The provider queued it (through portal.api); it belongs to the recipient's message.
    await OutboxItem.filter(id=item.id).update(message_ref=recipient.message_id)
    await AccessCode.create(
        recipient_id=recipient.id,
        code_hash=code_hash(recipient.id, code),
        created_at=current,
        expires_at=current + provider.policy.valid,
        delivery_id=item.id,
    )
    return None


async def start(provider: CodeVerificationProvider, recipient: Recipient, locale: str) -> Outcome:
    """Open message: send a code unless one that can still be used is on its way.

    Fifty parallel presses send one code: the look for a usable code and the new code happen
    under the recipient's guard, so the second press finds the first one's code.
    """
    async with atomic.serialized(_guard(recipient)):
        if await _locked_now(recipient):
            return Outcome(Step.LOCKED)
        current = await _newest(recipient)
        refused = None
        if current is None or await _has_expired(current, provider):
            refused = await _issue(provider, recipient, locale)
    if refused is not None:
        return refused
    outbox.wake()
    return await show(provider, recipient)


async def show(provider: CodeVerificationProvider, recipient: Recipient) -> Outcome:
    """The challenge page as it is: the prompt, and what went wrong with delivery if anything."""
    code = await _newest(recipient)
    if code is None:
        return Outcome(Step.START_OVER)
    item = await _delivery(code)
    ends = expiry(code, item, provider.policy.valid)
    if ends is not None and ends <= clock.now():
        return _challenge(provider, recipient, _expired())
    if item is not None and item.status == OutboxStatus.FAILED:
        return _challenge(provider, recipient, provider.delivery_failed(recipient))
    if item is not None and item.status == OutboxStatus.PENDING:
        # Not "sent" yet: the prompt's own words would say so too early.
        minutes = int(provider.policy.valid.total_seconds() // 60)
        on_its_way = dataclasses.replace(
            provider.prompt(recipient),
            instructions=_(
                "Your code is on its way. It is valid for %(minutes)d minutes from when it arrives."
            )
            % {"minutes": minutes},
            # An attempt failed (attempts alone count a delivery still under way, too).
            notice=_("Sending is delayed. We keep trying; this can take a few minutes.")
            if item.last_error
            else "",
        )
        return Outcome(Step.CHALLENGE, on_its_way)
    return _challenge(provider, recipient)


def _expired() -> str:
    return _("The code has expired. Ask for a new one with the button below.")


async def answer(provider: CodeVerificationProvider, recipient: Recipient, raw: str) -> Outcome:
    """Check an answer in constant time; count wrong ones and lock at the limit.

    The lock state, the count, the comparison and its consequence (the code used, or the try
    counted and perhaps the lock set) are one atomic step under the recipient's guard: of any
    number of parallel guesses at most ``max_tries`` are ever compared, and once the lock is
    set no guess, not even one already in flight, can open the message.
    """
    given = normalise(raw)
    if not given:
        return _challenge(provider, recipient, _("Enter the code."), Problem.INVALID)
    async with atomic.serialized(_guard(recipient)):
        if await _locked_now(recipient):
            return Outcome(Step.LOCKED)
        code = await _newest(recipient)
        if code is None:
            return Outcome(Step.START_OVER)
        if await _has_expired(code, provider):
            return _challenge(provider, recipient, _expired(), Problem.INVALID)
        if hmac.compare_digest(code_hash(recipient.id, given), code.code_hash):
            await AccessCode.filter(id=code.id).update(used_at=clock.now())
            await Recipient.filter(id=recipient.id).update(failed_attempts=0)
            return Outcome.verified()
        await Recipient.filter(id=recipient.id).update(failed_attempts=F("failed_attempts") + 1)
        failed = await Recipient.filter(id=recipient.id).values_list("failed_attempts", flat=True)
        tries_left = provider.policy.max_tries - int(failed[0])  # type: ignore[call-overload]
        await audit.record(
            audit.Event.PIN_FAILED,
            message_id=recipient.message_id,
            actor=audit.recipient_actor(recipient.id),
            tries_left=max(tries_left, 0),
        )
        locked_now = tries_left <= 0 and await access.lock(recipient)  # with the count
    if locked_now:
        await events.emit("link_locked", recipient=recipient)
    if tries_left <= 0:
        return Outcome(Step.LOCKED)
    text = ngettext(
        "The code is wrong. You have %(count)d try left.",
        "The code is wrong. You have %(count)d tries left.",
        tries_left,
    ) % {"count": tries_left}
    return _challenge(provider, recipient, text, Problem.INVALID)


async def resend(provider: CodeVerificationProvider, recipient: Recipient, locale: str) -> Outcome:
    """Send a new code, at most once per ``resend_after`` and ``daily_limit`` a day.

    The cooldown check and the new code are one atomic step under the recipient's guard.
    """
    async with atomic.serialized(_guard(recipient)):
        if await _locked_now(recipient):
            return Outcome(Step.LOCKED)
        newest = await _newest(recipient, unused=False)
        wait = (
            newest.created_at + provider.policy.resend_after - clock.now()
            if newest is not None
            else None
        )
        refused = None
        if wait is None or wait.total_seconds() <= 0:
            refused = await _issue(provider, recipient, locale)
    if wait is not None and wait.total_seconds() > 0:
        seconds = int(wait.total_seconds()) + 1
        text = ngettext(
            "You can ask for a new code in %(count)d second.",
            "You can ask for a new code in %(count)d seconds.",
            seconds,
        ) % {"count": seconds}
        return _challenge(provider, recipient, text, Problem.TOO_SOON)
    if refused is not None:
        return refused
    outbox.wake()
    return _challenge(provider, recipient, notice=_("A new code has been sent."))
