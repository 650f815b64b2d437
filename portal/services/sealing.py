"""Seal short secrets kept in the database (the outbox's personal links and PINs) with AES-GCM.

Whoever reads a copy of the database (a backup, a replica, an operator's SQL console) must not
find working personal links or PINs in the outbox while they wait for delivery. The key is
derived from ``PORTAL_SECRET_KEY`` with HKDF-SHA256 under a context string of its own, so it
is never the key that signs anything else, and a database alone opens nothing.

A sealed value is ``sealed:v1:`` followed by base64url(12-byte nonce + ciphertext + tag). The
caller's ``context`` (which column of which row it belongs to) is authenticated data: a
sealed value copied into another row or column does not open there.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "sealed:v1:"
OUTBOX_CONTEXT = b"sinetti outbox v1"
NONCE_BYTES = 12


class SealError(Exception):
    """A sealed value does not open: another secret key, another row, or tampered with."""


class Sealer:
    """Seals and opens text with a key derived for one ``purpose`` from ``secret``: the
    portal's secret key (text), or a message's data key (bytes)."""

    def __init__(self, secret: str | bytes, purpose: bytes = OUTBOX_CONTEXT) -> None:
        material = secret.encode("utf-8") if isinstance(secret, str) else secret
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(material)
        self._aead = AESGCM(key)

    def seal(self, plain: str, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plain.encode("utf-8"), context.encode("utf-8"))
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, stored: str, context: str) -> str:
        """The plain text of ``stored``; a value that was never sealed is returned as it is
        (rows written before sealing existed, and the empty text of a finished item)."""
        if not is_sealed(stored):
            return stored
        try:
            raw = base64.urlsafe_b64decode(stored[len(PREFIX) :].encode("ascii"))
            plain = self._aead.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode("utf-8")
            )
            return plain.decode("utf-8")
        except (InvalidTag, ValueError) as exc:
            raise SealError("the sealed text does not open with this key") from exc


def is_sealed(stored: str | None) -> bool:
    return bool(stored) and str(stored).startswith(PREFIX)
