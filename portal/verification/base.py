"""The interface every verification provider implements.

A verification provider decides what a recipient must do before a message opens: nothing
(``none``), type a PIN sent to their phone (``sms-pin``), or whatever an agency's plugin asks.
"""

from __future__ import annotations

from abc import ABC
from typing import ClassVar

from portal.providers import Provider


class VerificationError(Exception):
    """The recipient could not be verified (wrong code, locked, …)."""


class VerificationProvider(Provider, ABC):
    #: True when the recipient address must carry a phone number (the ``.sec`` suffix).
    requires_phone: ClassVar[bool] = False
    #: True while the provider's opening flow is not available yet in this version.
    preview: ClassVar[bool] = False

    def describe(self) -> str:
        """A short sentence for the recipient about what opening will ask of them."""
        return ""
