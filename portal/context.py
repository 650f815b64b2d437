"""What one running portal holds: its settings, plugin manager and chosen providers."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import uuid
from collections.abc import Mapping
from typing import Any

import pluggy
from babel.support import NullTranslations
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from quart import current_app

from portal.config import Settings
from portal.keys.cache import KeyCache
from portal.plugins import Providers


@dataclasses.dataclass
class Portal:
    settings: Settings
    pm: pluggy.PluginManager
    providers: Providers
    #: SHA-256 of the bytes received so far, per chunked upload this process served:
    #: ``(offset, hash)`` (see :mod:`portal.services.chunked`).
    upload_hashes: dict[uuid.UUID, tuple[int, Any]] = dataclasses.field(default_factory=dict)
    #: Data keys this process unwrapped lately (:mod:`portal.services.message_keys`).
    data_keys: KeyCache = dataclasses.field(default_factory=KeyCache)
    #: Set to wake the outbox worker of this app after a commit queued something.
    outbox_wake: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    #: Set to wake the malware scan worker of this app after a Send (services/scanning.py).
    scan_wake: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    #: Files of drafts that this process received, to be checked before Send (ids of
    #: attachments; services/scanning.py).
    prescans: collections.deque[int] = dataclasses.field(default_factory=collections.deque)
    #: This app's catalogs per translation domain (the core's and each plugin's), per locale
    #: (:func:`portal.i18n.load_catalogs`; read by :func:`portal.i18n.gettext`).
    translations: Mapping[str, Mapping[str, NullTranslations]] = dataclasses.field(
        default_factory=dict
    )
    #: The key that signs submission receipts (:mod:`portal.services.receipts`), read (or
    #: generated) when the app is made.
    signing_key: Ed25519PrivateKey | None = None


def portal() -> Portal:
    """The portal of the current app (inside a request or an app context)."""
    return current_app.extensions["sinetti"]
