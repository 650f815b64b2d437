"""The interface every verification provider implements.

A verification provider decides what a recipient must do before a message opens: nothing
(``none``), type a PIN sent to their phone (``sms-pin``), or whatever an agency's plugin asks.

The recipient's pages drive a provider through three steps, each answered with an
:class:`Outcome`:

- :meth:`VerificationProvider.start` when the recipient presses **Open message** (a POST:
  link scanners that only GET and HEAD never reach it);
- :meth:`VerificationProvider.show` when the challenge page is displayed (no side effects);
- :meth:`VerificationProvider.answer` when the recipient submits the challenge form, and
  :meth:`VerificationProvider.resend` when they ask for a new code.

Most providers send a one-time code somewhere;
:class:`portal.verification.codes.CodeVerificationProvider` does all of that (hashing, expiry,
tries, lock, cooldown, daily cap) and leaves only the delivery and the wording to the
subclass.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from portal.config import ConfigError
from portal.providers import Provider

if TYPE_CHECKING:
    from portal.models import Recipient


class Step(StrEnum):
    VERIFIED = "verified"  # the message opens
    CHALLENGE = "challenge"  # show the challenge form (``prompt``), maybe with an error
    LOCKED = "locked"  # too many wrong answers: the link no longer opens the message
    REFUSED = "refused"  # a limit was reached (``error`` says which); nothing was sent
    START_OVER = "start-over"  # nothing to answer (yet): back to the Open message page


@dataclasses.dataclass(frozen=True)
class Prompt:
    """What the challenge page shows; every text translated by the provider."""

    heading: str
    instructions: str
    label: str
    hint: str = ""
    resend_label: str = ""  # empty: no "send a new code" button
    notice: str = ""  # a neutral note, e.g. that delivery is delayed
    inputmode: str = "numeric"
    autocomplete: str = "one-time-code"


@dataclasses.dataclass(frozen=True)
class Outcome:
    step: Step
    prompt: Prompt | None = None
    error: str = ""  # shown in the error summary and beside the field
    status: int = 200

    @classmethod
    def verified(cls) -> Outcome:
        return cls(Step.VERIFIED)


class VerificationProvider(Provider, ABC):
    #: True when the recipient address must carry a phone number (the ``.sec`` suffix).
    requires_phone: ClassVar[bool] = False

    @abstractmethod
    def describe(self, recipient: Recipient) -> str:
        """One translated sentence for ``recipient``'s page: what opening will ask of them."""

    @abstractmethod
    async def start(self, recipient: Recipient, locale: str) -> Outcome:
        """The recipient pressed Open message. ``locale`` is the language for what is sent
        to them (an SMS, say)."""

    async def show(self, recipient: Recipient) -> Outcome:
        """The challenge page is displayed: describe it, change nothing."""
        return Outcome(Step.START_OVER)

    async def answer(self, recipient: Recipient, answer: str) -> Outcome:
        """The recipient submitted the challenge form with ``answer``."""
        return Outcome(Step.START_OVER)

    async def resend(self, recipient: Recipient, locale: str) -> Outcome:
        """The recipient asked for a new code."""
        return Outcome(Step.START_OVER)


def _option_int(options: dict[str, str], prefix: str, name: str, default: int) -> int:
    raw = options.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"PORTAL_{prefix}{name.upper()}: expected a positive whole number")
    return value


@dataclasses.dataclass(frozen=True)
class CodePolicy:
    """The rules for one-time codes: the defaults follow the SMS PIN of the commercial
    product, each can be changed by the provider's settings."""

    length: int = 6
    valid: timedelta = timedelta(minutes=10)
    max_tries: int = 5
    resend_after: timedelta = timedelta(seconds=60)
    daily_limit: int = 10

    OPTIONS: ClassVar[frozenset[str]] = frozenset(
        {"length", "valid_minutes", "max_tries", "resend_seconds", "daily_limit"}
    )

    @classmethod
    def from_options(cls, prefix: str, options: dict[str, str]) -> CodePolicy:
        length = _option_int(options, prefix, "length", cls.length)
        if not 4 <= length <= 12:
            raise ConfigError(f"PORTAL_{prefix}LENGTH: use 4 to 12 digits")
        return cls(
            length=length,
            valid=timedelta(minutes=_option_int(options, prefix, "valid_minutes", 10)),
            max_tries=_option_int(options, prefix, "max_tries", cls.max_tries),
            resend_after=timedelta(seconds=_option_int(options, prefix, "resend_seconds", 60)),
            daily_limit=_option_int(options, prefix, "daily_limit", cls.daily_limit),
        )
