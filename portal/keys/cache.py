"""Data keys this process unwrapped lately, so that a file arriving in fifty chunks, or a zip
of ten attachments, asks the key provider (a KMS: a network call, a cost) once, not each time.

Entries live ``ttl`` seconds (monotonic clock) and at most ``size`` are kept, the oldest used
going first. Only memory holds them; a purged message's key is forgotten here at once, and
in other processes at the latest ``ttl`` later.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict

TTL_SECONDS = 300.0
SIZE = 1000


class KeyCache:
    def __init__(self, ttl: float = TTL_SECONDS, size: int = SIZE) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[uuid.UUID, tuple[float, bytes]] = OrderedDict()

    def get(self, message_id: uuid.UUID) -> bytes | None:
        entry = self._entries.get(message_id)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > self.ttl:
            del self._entries[message_id]
            return None
        self._entries.move_to_end(message_id)
        return entry[1]

    def put(self, message_id: uuid.UUID, data_key: bytes) -> None:
        self._entries[message_id] = (time.monotonic(), data_key)
        self._entries.move_to_end(message_id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget(self, message_id: uuid.UUID) -> None:
        self._entries.pop(message_id, None)

    def __len__(self) -> int:
        return len(self._entries)
