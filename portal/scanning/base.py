"""The interface every malware scanner implements, and the built-in ``none``.

A message's attachments are scanned before its recipients are notified; the portal reads
each stored file back (decrypted) and streams it to the scanner, so a scanner never needs the
whole file in memory. ``PORTAL_SCANNER`` picks the scanner (``none``, the default, built into
the core; ``clamav`` is a plugin).

A scanner that cannot answer raises :class:`ScannerUnavailable`: the caller keeps the message
waiting and asks again later (fail closed), unless ``PORTAL_SCAN_FAIL_OPEN`` says otherwise.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable
from typing import ClassVar

from portal.providers import Provider


class ScannerUnavailable(Exception):
    """The scanner cannot say whether the file is clean now: it is unreachable, timed out, or
    answered an error (a size limit, say). The message must wait and be scanned again."""


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What a scanner found in one file: ``clean``, or the ``signature`` it matched."""

    clean: bool
    signature: str | None = None

    @classmethod
    def ok(cls) -> Verdict:
        return cls(clean=True)

    @classmethod
    def infected(cls, signature: str) -> Verdict:
        return cls(clean=False, signature=signature)


class Scanner(Provider, ABC):
    """Scans one file at a time, given as a stream of byte chunks of any size.

    :meth:`open` should not fail when the scanner is merely unreachable (it may come up after
    the portal): log a warning and raise :class:`ScannerUnavailable` from :meth:`scan`.
    """

    #: False for a scanner that looks at nothing (``none``): the caller may then skip reading
    #: the files back and treat every message as checked at once.
    inspects_files: ClassVar[bool] = True

    @abstractmethod
    async def scan(self, chunks: AsyncIterable[bytes | bytearray]) -> Verdict:
        """Read ``chunks`` to the end and say whether the file they make is clean; raise
        :class:`ScannerUnavailable` when the scanner cannot say."""

    async def check(self) -> None:
        """Raise :class:`ScannerUnavailable` when the scanner cannot be reached now (for
        start-up warnings and operators' checks); the default assumes it can."""


class NoScanner(Scanner):
    """``PORTAL_SCANNER=none``: every file is clean. For portals whose files are scanned
    elsewhere (a mail gateway, the recipients' own systems), and for development."""

    name = "none"
    inspects_files = False

    async def scan(self, chunks: AsyncIterable[bytes | bytearray]) -> Verdict:
        return Verdict.ok()  # the chunks are not even read: nothing looks at them
