"""The interface every mail transport implements (SMTP, the development mailbox, …)."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod

from portal.providers import Provider


@dataclasses.dataclass(frozen=True)
class OutgoingMail:
    to: str
    subject: str
    text: str
    html: str | None = None
    #: The ``Message-ID`` header ("<…@domain>"): the outbox fixes it when the mail is queued,
    #: so a second delivery of the same mail carries the same one. None: the transport makes one.
    message_id: str | None = None


class MailDeliveryError(Exception):
    """Delivery failed. ``permanent`` failures (address refused) are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class MailTransport(Provider, ABC):
    @abstractmethod
    async def send(self, mail: OutgoingMail) -> None:
        """Deliver one mail or raise :class:`MailDeliveryError`."""
