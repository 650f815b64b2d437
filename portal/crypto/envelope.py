"""Envelope encryption: every message has a random data key of its own, stored only wrapped
by a key-encryption key (KEK) that lives apart from the data.

The wrap is AES-256-GCM under the KEK with a random nonce, and the ``context`` (which
message the key belongs to) as authenticated data: a wrapped key copied to another message's
row does not unwrap there. A wrapped key is 12 bytes of nonce, then the 32 encrypted bytes
and the 16-byte tag. Deleting the wrapped key makes everything encrypted under the data key
unreadable for good (crypto-shredding), wherever copies of the ciphertext went.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

DATA_KEY = 32  # bytes: AES-256
KEK = 32
NONCE = 12
WRAPPED = NONCE + DATA_KEY + 16
_AAD = b"sinetti data key 1|"


class UnwrapError(ValueError):
    """A wrapped key does not open: another KEK, another context, or changed bytes."""


def new_data_key() -> bytes:
    return os.urandom(DATA_KEY)


class KeyWrapper:
    """Wraps and unwraps data keys under one key-encryption key."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != KEK:
            raise ValueError("a key-encryption key is 32 bytes")
        self._aead = AESGCM(kek)

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        if len(data_key) != DATA_KEY:
            raise ValueError("a data key is 32 bytes")
        nonce = os.urandom(NONCE)
        return nonce + self._aead.encrypt(nonce, data_key, _AAD + context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        if len(wrapped) != WRAPPED:
            raise UnwrapError(f"a wrapped key is {WRAPPED} bytes, not {len(wrapped)}")
        try:
            return self._aead.decrypt(wrapped[:NONCE], wrapped[NONCE:], _AAD + context)
        except InvalidTag:
            raise UnwrapError("the wrapped key does not open with this KEK and context") from None
