"""The interface every verification provider implements.

A verification provider decides what a recipient must do before a message opens: nothing
(``none``), type a PIN sent to their phone (``sms-pin``), or whatever an agency's plugin asks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from portal.providers import Provider

if TYPE_CHECKING:
    from portal.models import Recipient


class VerificationProvider(Provider, ABC):
    # True when the recipient address must carry a phone number (the ``.sec`` suffix).
    requires_phone: ClassVar[bool] = False

    @abstractmethod
    def describe(self, recipient: Recipient) -> str:
        """One translated sentence for ``recipient``'s page: what opening will ask of them."""
