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
from portal.providers import Options, Provider

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


class Problem(StrEnum):
    """What went wrong with the recipient's request, if anything (the web layer says what
    that is in HTTP)."""

    NONE = ""  # nothing: a challenge to answer, maybe with a note
    INVALID = "invalid"  # the answer was empty, wrong or came too late
    TOO_SOON = "too-soon"  # a new code was asked for before the wait was over
    LIMIT = "limit"  # a limit was reached (new codes for the day, say)


@dataclasses.dataclass(frozen=True)
class Outcome:
    step: Step
    prompt: Prompt | None = None
    error: str = ""  # shown in the error summary and beside the field
    problem: Problem = Problem.NONE

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
        option = Options(prefix, options)
        length = option.integer("length", cls.length)
        if not 4 <= length <= 12:
            raise ConfigError(f"{option.variable('length')}: use 4 to 12 digits")
        return cls(
            length=length,
            valid=timedelta(minutes=option.integer("valid_minutes", 10)),
            max_tries=option.integer("max_tries", cls.max_tries),
            resend_after=timedelta(seconds=option.integer("resend_seconds", 60)),
            daily_limit=option.integer("daily_limit", cls.daily_limit),
        )
