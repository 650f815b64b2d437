"""CRC-32 (for the zip) and SHA-256 (shown to people) of bytes as they stream in.

Both hash functions release the GIL on large buffers, so a big piece is hashed in a worker
thread: the event loop keeps receiving the next bytes meanwhile. Small pieces are hashed in
place, where the hand-off would cost more than it saves.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

IN_THREAD_FROM = 256 * 1024


def _update(data: bytes, crc: int, sha: Any) -> int:
    if sha is not None:
        sha.update(data)
    return zlib.crc32(data, crc)


async def update(data: bytes, crc: int, sha: Any) -> int:
    """Feed ``data`` to ``sha`` (a hashlib object, or None) and return the new CRC-32."""
    if len(data) >= IN_THREAD_FROM:
        return await asyncio.to_thread(_update, data, crc, sha)
    return _update(data, crc, sha)
