"""Signed submission receipts: make, sign and verify them.

A sender needs proof of what they filed and when, which they can show to anyone — also to
someone who does not trust the portal's database. So on Send the portal signs a receipt with
an Ed25519 key and keeps the signed document on the message; anyone holding the public key
(published at ``/.well-known/sinetti-receipt-key``) checks it offline.

The receipt is canonical JSON (sorted keys, no spaces, UTF-8, nothing escaped that need not
be) of: the format, the portal's base URL, the message id (and the id of the message it
answers, for a reply), the sender's address, the recipients' addresses, the subject, the time
of sending (UTC, ISO 8601) and each attachment's name, size and SHA-256, and the fingerprint
of the public key. Phone numbers are left out: they prove nothing about what was sent, and a
receipt is shown around. The message text is left out too, as in every e-mail the portal writes.

The signed document — what ``receipt.json`` holds — is itself canonical JSON:
``{"receipt":<the receipt>,"signature":"<base64>"}``, the signature (detached, 64 bytes) over
exactly the bytes of the receipt as they stand in the document. So the signed bytes can be cut
out of the file as they are (what the README's ``openssl`` recipe does), and a verifier that
parses the JSON gets them back by writing the receipt canonically again.

The key is ``PORTAL_SIGNING_KEY_FILE`` (PEM, PKCS #8) or, when that is not set, a key that the
portal generates into its data directory on first start, mode 0600 like ``secret.key``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import secrets
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from portal.config import PREFIX, ConfigError, Settings
from portal.context import portal
from portal.models import Attachment, Message, Recipient
from portal.services import message_fields

log = logging.getLogger(__name__)

FORMAT = "sinetti-receipt/1"
SIGNATURE_BYTES = 64
FIELDS = frozenset(
    {
        "format",
        "portal",
        "message_id",
        "in_reply_to",
        "sender",
        "recipients",
        "subject",
        "sent_at",
        "attachments",
        "key_fingerprint",
    }
)


class ReceiptKeyError(Exception):
    """The key file cannot be read or holds no Ed25519 key. The message says which file."""


class InvalidReceipt(Exception):
    """The document is no receipt, or its signature does not hold. The message says why."""


# -- the key -----------------------------------------------------------------------------------


def startup_key(settings: Settings) -> Ed25519PrivateKey:
    """The portal's signing key, generated first when the default file does not exist yet.

    A configured ``PORTAL_SIGNING_KEY_FILE`` must exist: a missing mount must not quietly
    become a new key, which would make every receipt signed so far look foreign. Raises
    :class:`ConfigError` naming the variable.
    """
    path = settings.signing_key_path
    try:
        if not settings.signing_key_file and not path.exists():
            _generate(path)
        return load_private_key(path)
    except (OSError, ReceiptKeyError) as exc:
        raise ConfigError(f"{PREFIX}SIGNING_KEY_FILE: {exc}") from None


def _generate(path: Path) -> None:
    """Write a new key to ``path`` (0600), never over a key another process wrote first.

    The key is written whole to a temporary file and then linked to its name: the link fails
    if the name exists, so workers starting together keep the one key that got there first,
    and nobody ever reads a half-written file.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(temporary, path)
            log.info("generated the receipt-signing key %s", path)
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file ``path``."""
    data = _read_key_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ReceiptKeyError(f"{path} holds no unencrypted private key in PEM (PKCS #8)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ReceiptKeyError(f"{path} holds another kind of key than Ed25519")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("the receipt-signing key %s is readable by other users (%o)", path, mode)
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in the PEM file ``path``: a public key as the portal publishes
    it, or a private key (the portal's own key file)."""
    data = _read_key_file(path)
    key: Any
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ReceiptKeyError(f"{path} holds no public or private key in PEM") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ReceiptKeyError(f"{path} holds another kind of key than Ed25519")
    return key


def _read_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ReceiptKeyError(f"{path} does not exist") from None
    except OSError as exc:
        raise ReceiptKeyError(f"cannot read {path}: {exc.strerror}") from None


def portal_key() -> Ed25519PrivateKey:
    """The current app's signing key (read when the app was made)."""
    key = portal().signing_key
    if key is None:
        raise RuntimeError("this app has no receipt-signing key")
    return key


def public_pem(key: Ed25519PublicKey) -> str:
    """The public key as published (PEM, SubjectPublicKeyInfo)."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def fingerprint(key: Ed25519PublicKey) -> str:
    """``sha256:`` and the hex SHA-256 of the public key's DER form, as
    ``openssl pkey -pubin -outform DER | sha256sum`` prints it."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


# -- making and signing ------------------------------------------------------------------------


def canonical(value: Any) -> bytes:
    """The one way a receipt is written: sorted keys, no spaces, UTF-8 (not ``\\u`` escapes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def utc_iso(moment: datetime) -> str:
    """``2026-12-01T11:43:25Z``: UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make(
    settings: Settings,
    message: Message,
    sender_email: str,
    recipients: list[str],
    attachments: list[Attachment],
    key: Ed25519PublicKey,
) -> dict[str, Any]:
    """The receipt of a sent ``message`` (not yet signed)."""
    if message.sent_at is None:
        raise ValueError("only a sent message has a receipt")
    reply_to_id = getattr(message, "reply_to_id", None)
    return {
        "format": FORMAT,
        "portal": settings.base_url.rstrip("/"),
        "message_id": str(message.id),
        "in_reply_to": str(reply_to_id) if reply_to_id else None,
        "sender": sender_email,
        "recipients": list(recipients),
        "subject": message.subject,
        "sent_at": utc_iso(message.sent_at),
        "attachments": [
            {"name": attachment.filename, "size": attachment.size, "sha256": attachment.sha256}
            for attachment in attachments
        ],
        "key_fingerprint": fingerprint(key),
    }


def sign(receipt: dict[str, Any], key: Ed25519PrivateKey) -> str:
    """The signed document (the text of ``receipt.json``)."""
    signature = key.sign(canonical(receipt))
    return canonical(
        {"receipt": receipt, "signature": base64.b64encode(signature).decode("ascii")}
    ).decode("utf-8")


async def issue(
    settings: Settings, message: Message, sender_email: str, key: Ed25519PrivateKey
) -> str:
    """Sign the receipt of ``message`` as stored (its recipients and attachments are read
    back), keep it on the message and return it.

    Called inside the transaction that sends the message, so a message is sent with exactly
    one receipt or not at all.
    """
    recipients = await Recipient.filter(message_id=message.id).order_by("id")
    attachments = await Attachment.filter(message_id=message.id).order_by("id")
    await message_fields.open_rows(attachments)
    receipt = make(
        settings,
        message,
        sender_email,
        [recipient.email for recipient in recipients],
        list(attachments),
        key.public_key(),
    )
    message.receipt = sign(receipt, key)
    await message_fields.save(message, ["receipt"])
    return message.receipt


# -- verifying ---------------------------------------------------------------------------------


def parse(document: bytes | str) -> tuple[dict[str, Any], bytes]:
    """The receipt and the signature of a signed document, not yet verified.

    Raises :class:`InvalidReceipt` for anything that is not a signed receipt of this format.
    """
    try:
        parsed = json.loads(document)
    except (ValueError, UnicodeDecodeError):
        raise InvalidReceipt("not a receipt: the file is not JSON") from None
    if not isinstance(parsed, dict) or set(parsed) != {"receipt", "signature"}:
        raise InvalidReceipt("not a receipt: expected the members receipt and signature")
    receipt, signature = parsed["receipt"], parsed["signature"]
    if not isinstance(receipt, dict) or not isinstance(signature, str):
        raise InvalidReceipt("not a receipt: receipt must be an object, signature a string")
    try:
        raw = base64.b64decode(signature, validate=True)
    except binascii.Error:
        raise InvalidReceipt("the signature is not base64") from None
    if len(raw) != SIGNATURE_BYTES:
        raise InvalidReceipt("the signature does not have the length of an Ed25519 signature")
    if receipt.get("format") != FORMAT:
        raise InvalidReceipt(f"unknown format {receipt.get('format')!r}, expected {FORMAT}")
    if set(receipt) != FIELDS:
        raise InvalidReceipt("the receipt does not have the fields of " + FORMAT)
    return receipt, raw


def verify(document: bytes | str, key: Ed25519PublicKey) -> dict[str, Any]:
    """The receipt of a signed document whose signature ``key`` confirms.

    Raises :class:`InvalidReceipt` when it is not a receipt, was made with another key, or
    anything in it changed after it was signed.
    """
    receipt, signature = parse(document)
    expected = fingerprint(key)
    if receipt["key_fingerprint"] != expected:
        raise InvalidReceipt(
            f"the receipt names the key {receipt['key_fingerprint']}, this key is {expected}"
        )
    try:
        key.verify(signature, canonical(receipt))
    except InvalidSignature:
        raise InvalidReceipt("the signature does not match: the receipt was changed") from None
    return receipt


def summary(receipt: dict[str, Any]) -> str:
    """A verified receipt in a few plain lines (English, for the command line)."""
    lines = [
        f"portal:      {receipt['portal']}",
        f"message:     {receipt['message_id']}",
        f"sender:      {receipt['sender']}",
        f"recipients:  {', '.join(receipt['recipients'])}",
        f"subject:     {receipt['subject']}",
        f"sent at:     {receipt['sent_at']}",
    ]
    if receipt["in_reply_to"]:
        lines.append(f"in reply to: {receipt['in_reply_to']}")
    attachments = receipt["attachments"]
    lines.append(f"attachments: {len(attachments)}")
    for attachment in attachments:
        lines.append(
            f"  {attachment['name']} ({attachment['size']} bytes, SHA-256 {attachment['sha256']})"
        )
    lines.append(f"key:         {receipt['key_fingerprint']}")
    return "\n".join(lines)
