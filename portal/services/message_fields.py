"""The confidential text of a message in the database, sealed with the message's data key.

Subject, text, signature, the Recipients field of a draft and the signed receipt (it names
the subject and the files), each recipient's phone number and each file's name are stored
sealed (:mod:`portal.services.sealing`, AES-256-GCM) with a key derived from the message's
data key (:mod:`portal.services.message_keys`). A copy of the database alone opens none of
them, and once the purge deletes the data key nothing does.

The context of each value (table, column, message id) is authenticated data: a value copied
into another message, or into another column, does not open there. (Two recipients' phone
numbers, or two files' names, of one message could be swapped with each other: the rows'
ids are not known before they are written.)

What must be found again but not read (the browser's description of a file being uploaded,
which names it) is stored as a keyed hash (:func:`lookup_hash`).

Services write these fields only through :func:`create` and :func:`save`, and open the rows
they read with :func:`open_rows` before anything shows them. Opening is in place and once: an
opened row holds the plain text. A row stored before this existed holds plain text and is
read as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable
from typing import Any, TypeVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from tortoise.models import Model

from portal.models import Attachment, Message, Recipient, Upload
from portal.services import message_keys
from portal.services.sealing import Sealer, is_sealed

PURPOSE = b"sinetti message fields v1"
LOOKUP_PURPOSE = b"sinetti message lookups v1"

#: The sealed columns of each model.
SEALED: dict[type[Model], tuple[str, ...]] = {
    Message: ("subject", "body", "signature", "recipients_text", "receipt"),
    Recipient: ("phone",),
    Attachment: ("filename",),
    Upload: ("filename",),
}

_OPENED = "_sinetti_fields_opened"

M = TypeVar("M", bound=Model)


def _message_id(model: type[Model], values: Any) -> uuid.UUID:
    """The message a row (or the values of a row to be made) belongs to."""
    get = values.get if isinstance(values, dict) else lambda name: getattr(values, name, None)
    found = get("id") if model is Message else get("message_id")
    if found is None and model is not Message:
        found = getattr(get("message"), "id", None)
    if found is None:
        raise ValueError(f"a {model.__name__} row needs its message to seal its fields")
    return found if isinstance(found, uuid.UUID) else uuid.UUID(str(found))


def _context(model: type[Model], column: str, message_id: uuid.UUID) -> str:
    return context(model._meta.db_table, column, message_id)


def context(table: str, column: str, message_id: uuid.UUID | str) -> str:
    """What a sealed value belongs to (its authenticated data): table, column and message."""
    return f"{table}.{column} {message_id}"


def open_value(
    data_key: bytes, table: str, column: str, message_id: uuid.UUID | str, stored: str
) -> str:
    """The plain text of one stored value, given its message's data key (for tools that read
    the database directly: the concurrency tests, an export)."""
    return Sealer(data_key, PURPOSE).open(stored, context(table, column, message_id))


async def _sealer(message_id: uuid.UUID) -> Sealer:
    return Sealer(await message_keys.ensure(message_id), PURPOSE)


async def lookup_hash(message_id: uuid.UUID, text: str) -> str:
    """A keyed hash of ``text`` (HMAC-SHA256 with a key derived from the message's data key),
    for a value that must be found again but not read: the same text of the same message
    gives the same hash."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=LOOKUP_PURPOSE).derive(
        await message_keys.ensure(message_id)
    )
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


async def seal_values(model: type[Model], message_id: uuid.UUID, values: dict[str, Any]) -> None:
    """Seal, in ``values``, the sealed columns of ``model`` that it names (in place)."""
    names = [name for name in SEALED[model] if values.get(name)]
    if not names:
        return
    sealer = await _sealer(message_id)
    for name in names:
        values[name] = sealer.seal(values[name], _context(model, name, message_id))


async def create(model: type[M], **values: Any) -> M:
    """``model.create(**values)`` with its confidential fields sealed in the database; the
    returned row holds them open."""
    plain = {name: values[name] for name in SEALED[model] if name in values}
    await seal_values(model, _message_id(model, values), values)
    row = await model.create(**values)
    for name, value in plain.items():
        setattr(row, name, value)
    setattr(row, _OPENED, True)
    return row


async def save(row: Model, update_fields: Iterable[str]) -> None:
    """``row.save(update_fields=…)`` with its confidential fields sealed in the database;
    the row keeps them open. Only an opened row (or one :func:`create` made) may be saved: a
    field still sealed would be sealed a second time."""
    if not getattr(row, _OPENED, False):
        raise ValueError(f"open the {type(row).__name__} row before saving it")
    fields = list(update_fields)
    model = type(row)
    plain = {name: getattr(row, name) for name in SEALED[model] if name in fields}
    sealed = dict(plain)
    await seal_values(model, _message_id(model, row), sealed)
    for name, value in sealed.items():
        setattr(row, name, value)
    try:
        await row.save(update_fields=fields)
    finally:
        for name, value in plain.items():
            setattr(row, name, value)


async def open_rows(*groups: Model | Iterable[Model] | None) -> None:
    """Open the confidential fields of every row given (rows, lists of rows, ``None``)."""
    for group in groups:
        if group is None:
            continue
        rows = [group] if isinstance(group, Model) else list(group)
        for row in rows:
            await _open(row)


async def _open(row: Model) -> None:
    if getattr(row, _OPENED, False):
        return
    model = type(row)
    names = [name for name in SEALED[model] if is_sealed(getattr(row, name, None))]
    if names:
        message_id = _message_id(model, row)
        sealer = Sealer(await message_keys.data_key(message_id), PURPOSE)
        for name in names:
            setattr(row, name, sealer.open(getattr(row, name), _context(model, name, message_id)))
    setattr(row, _OPENED, True)


async def open_message(message: Message) -> Message:
    """Open the message and what it has fetched of its recipients, attachments and the
    message it answers; returns it."""
    await open_rows(message)
    for relation in ("recipients", "attachments"):
        related = getattr(message, f"_{relation}", None)
        if related is not None and getattr(related, "_fetched", False):
            await open_rows(list(related))
    reply_to = getattr(message, "_reply_to", None)
    if isinstance(reply_to, Message):
        await open_rows(reply_to)
    return message
