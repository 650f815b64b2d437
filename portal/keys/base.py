"""The interface every key provider implements: it keeps the key-encryption keys (KEKs) that
wrap each message's data key, apart from the data (a key file, a KMS).

The portal makes a data key per message (:func:`new_data_key`), stores it only wrapped, and
asks the provider to unwrap it when the message is read. ``PORTAL_KEYS`` picks the provider
(``local`` is built in; ``aws-kms`` is a plugin).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod

from portal.crypto.envelope import new_data_key
from portal.providers import Provider


class KeyUnavailable(Exception):
    """The provider cannot wrap or unwrap now (the KMS is unreachable, a KEK is missing):
    the request or task fails and is retried; nothing is stored half-encrypted."""


@dataclasses.dataclass(frozen=True)
class WrappedKey:
    """A data key as it is stored: the id of the KEK that wrapped it, and the wrapped bytes."""

    kek_id: str
    blob: bytes


@dataclasses.dataclass(frozen=True)
class DataKey:
    """A new data key, in the clear (kept only in memory) and wrapped (stored)."""

    plain: bytes
    wrapped: WrappedKey


class KeyProvider(Provider, ABC):
    """Wraps and unwraps data keys. ``context`` names what the key protects (the message);
    a provider binds it to the wrapped key, so a key copied to another message does not
    unwrap there."""

    @property
    @abstractmethod
    def current_kek_id(self) -> str:
        """The KEK new keys are wrapped with; keys wrapped with another one are re-wrapped by
        ``sinetti keys rotate``."""

    @abstractmethod
    async def wrap(self, plain: bytes, context: bytes) -> WrappedKey:
        """Wrap ``plain`` with the current KEK; raise :class:`KeyUnavailable` when it cannot."""

    @abstractmethod
    async def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        """The data key of ``wrapped``; raise :class:`KeyUnavailable` when the KEK is gone or
        unreachable, and :class:`portal.crypto.envelope.UnwrapError` when it does not open."""

    def add_key(self) -> str:
        """Make a new key-encryption key the current one; its id. Only providers that keep
        their keys themselves can; in a KMS the operator makes the key and names it in the
        settings, and ``sinetti keys rotate`` re-wraps."""
        raise KeyUnavailable(
            f"the {self.name!r} key provider cannot make keys: make one in its own system and "
            "configure it"
        )

    async def new_key(self, context: bytes) -> DataKey:
        """A new random data key and its wrapping (a KMS may make both in one call)."""
        plain = new_data_key()
        return DataKey(plain, await self.wrap(plain, context))

    async def rewrap(self, wrapped: WrappedKey, context: bytes) -> WrappedKey:
        """``wrapped`` wrapped anew with the current KEK (a KMS may do it without the key
        leaving it)."""
        return await self.wrap(await self.unwrap(wrapped, context), context)
