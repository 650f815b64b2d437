"""The interface every SMS gateway implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from portal.providers import Provider


class SmsDeliveryError(Exception):
    """Sending failed. ``permanent`` failures (number refused) are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class SmsGateway(Provider, ABC):
    @abstractmethod
    async def send(self, to: str, text: str) -> None:
        """Send ``text`` to the E.164 number ``to`` or raise :class:`SmsDeliveryError`."""
