"""The base of verification providers that send the recipient a one-time code.

It lives apart from :mod:`portal.verification.base` so that the arrows point one way: this
module uses the service :mod:`portal.services.access_codes`, which uses the base.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, ClassVar

from portal.services import access_codes
from portal.verification.base import CodePolicy, Outcome, Prompt, VerificationProvider

if TYPE_CHECKING:
    from portal.config import Settings
    from portal.models import OutboxItem, Recipient

__all__ = ["CodePolicy", "CodeVerificationProvider", "Prompt"]


class CodeVerificationProvider(VerificationProvider):
    """A provider that sends the recipient a numeric one-time code and asks for it.

    Subclasses say how the code travels (:meth:`deliver`, which queues it through the outbox
    and returns the item) and word the page (:meth:`prompt`, :meth:`delivery_failed`). The
    settings ``PORTAL_<prefix>LENGTH``, ``VALID_MINUTES``, ``MAX_TRIES``, ``RESEND_SECONDS``
    and ``DAILY_LIMIT`` tune the :class:`CodePolicy`.
    """

    known_options: ClassVar[frozenset[str] | None] = CodePolicy.OPTIONS

    def __init__(self, settings: Settings, options: dict[str, str]) -> None:
        super().__init__(settings, options)
        self.policy = CodePolicy.from_options(self.settings_prefix, options)

    @abstractmethod
    async def deliver(self, recipient: Recipient, code: str, locale: str) -> OutboxItem:
        """Queue ``code`` for ``recipient`` (in ``locale``); return the outbox item."""

    @abstractmethod
    def prompt(self, recipient: Recipient) -> Prompt:
        """The translated texts of the challenge page."""

    @abstractmethod
    def delivery_failed(self, recipient: Recipient) -> str:
        """The translated error shown when the code could not be delivered at all."""

    async def start(self, recipient: Recipient, locale: str) -> Outcome:
        return await access_codes.start(self, recipient, locale)

    async def show(self, recipient: Recipient) -> Outcome:
        return await access_codes.show(self, recipient)

    async def answer(self, recipient: Recipient, answer: str) -> Outcome:
        return await access_codes.answer(self, recipient, answer)

    async def resend(self, recipient: Recipient, locale: str) -> Outcome:
        return await access_codes.resend(self, recipient, locale)
