"""Scanner ``clamav``: each attachment is streamed to ClamAV's daemon, clamd, with its
INSTREAM command (over TCP or a Unix socket); nothing is written to a file shared with clamd.

Settings (``PORTAL_SCANNER=clamav``):

- ``PORTAL_CLAMAV_ADDRESS``: where clamd listens, ``tcp://host:port`` (clamd.conf
  ``TCPSocket``/``TCPAddr``) or ``unix:///run/clamav/clamd.ctl`` (``LocalSocket``); default
  ``tcp://127.0.0.1:3310``.
- ``PORTAL_CLAMAV_TIMEOUT_SECONDS``: how long one step may take (connecting, sending a piece
  of the file, waiting for the verdict once it is all sent); default 60.

clamd must take whole messages: set ``StreamMaxLength`` in clamd.conf to at least
``PORTAL_MAX_ATTACHMENTS_BYTES`` (400 MB by default; clamd's own default is 100 MB). A longer
file is refused ("INSTREAM size limit exceeded"), which the portal treats as clamd being
unavailable, so the message waits. Raise ``MaxFileSize`` and ``MaxScanSize`` as far, too, and
``MaxScanTime`` for the biggest files: past those limits clamd answers OK without having looked
at the rest unless ``AlertExceedsMax yes`` makes it report them
(``Heuristics.Limits.Exceeded…``). clamd drops a connection idle for ``ReadTimeout`` seconds.

Start-up does not wait for clamd: when it cannot be reached a warning is logged and each scan
fails with :class:`portal.api.ScannerUnavailable` until it can (the message waits: fail closed).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable
from typing import ClassVar

from portal.api import (
    ConfigError,
    Scanner,
    ScannerUnavailable,
    Settings,
    Verdict,
    hookimpl,
)

from .clamd import Clamd, parse_address

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "tcp://127.0.0.1:3310"


class ClamavScanner(Scanner):
    name = "clamav"
    settings_prefix = "CLAMAV_"
    known_options: ClassVar[frozenset[str] | None] = frozenset({"address", "timeout_seconds"})

    def __init__(self, settings: Settings, options: dict[str, str]) -> None:
        super().__init__(settings, options)
        text = self.option.text("address", DEFAULT_ADDRESS)
        try:
            address = parse_address(text)
        except ValueError:
            raise ConfigError(
                f"{self.option.variable('address')}: expected tcp://host:port or "
                f"unix:///path/to/clamd.socket, got {text!r}"
            ) from None
        timeout = self.option.positive_float("timeout_seconds", 60.0, unit="seconds")
        self.clamd = Clamd(address, timeout)

    async def open(self) -> None:
        try:
            await self.check()
        except ScannerUnavailable as error:
            log.warning("%s; attachments wait to be scanned until it answers", error)
        else:
            log.info("clamd at %s answers", self.clamd.address)

    async def check(self) -> None:
        await self.clamd.ping()

    async def scan(self, chunks: AsyncIterable[bytes | bytearray]) -> Verdict:
        return await self.clamd.instream(chunks)


@hookimpl
def register_scanners() -> list[type[Scanner]]:
    return [ClamavScanner]
