"""Which files may be sent: decided by the name and by the bytes.

- A name whose type (its extension) is in ``PORTAL_REFUSED_FILE_TYPES`` is refused: programs,
  scripts and installers by default. When ``PORTAL_ALLOWED_FILE_TYPES`` is set, a name of
  any other type is refused too.
- Bytes that are a program are refused whatever the name says: a Windows program (``MZ``), a
  Linux one (ELF), a macOS one (Mach-O) or a script that names its interpreter (``#!``). The
  first :data:`HEAD` bytes decide, read as the file arrives (``filetype``'s signatures, and
  ours for Mach-O and scripts, which it does not know).

The name is checked before a byte is stored (a chunked upload's announcement, a form part's
headers); the bytes as soon as the first :data:`HEAD` of them arrived. A refusal names the
file and why (:class:`FileRefused`), and nothing of the upload is kept.
"""

from __future__ import annotations

from pathlib import PurePath

import filetype
from filetype.types import archive

from portal.config import Settings

#: How many first bytes decide what a file is.
HEAD = 262


class MachO(filetype.Type):
    """A macOS program: a Mach-O file, thin or universal (fat)."""

    MAGICS = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")

    def __init__(self) -> None:
        super().__init__(mime="application/x-mach-binary", extension="macho")

    def match(self, buf: bytes) -> bool:
        # A universal binary starts like a Java class file (0xCAFEBABE): both are programs.
        return bytes(buf[:4]) in self.MAGICS or bytes(buf[:4]) == b"\xca\xfe\xba\xbe"


class Script(filetype.Type):
    """A script that names its interpreter on its first line (``#!/bin/sh``)."""

    def __init__(self) -> None:
        super().__init__(mime="text/x-script", extension="script")

    def match(self, buf: bytes) -> bool:
        return bytes(buf[:2]) == b"#!"


PROGRAMS = (archive.Exe(), archive.Elf(), MachO(), Script())


class FileRefused(Exception):
    """The file ``filename`` may not be sent. ``reason``: ``program`` (its bytes or its type
    are a program or a script) or ``not-allowed`` (its type is not an accepted one)."""

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason


def _types(listed: tuple[str, ...]) -> frozenset[str]:
    return frozenset(entry.strip().lstrip(".").lower() for entry in listed)


def allowed_types(settings: Settings) -> list[str]:
    """The accepted types when only some are (``PORTAL_ALLOWED_FILE_TYPES``), sorted."""
    return sorted(_types(settings.allowed_file_types))


def file_type(filename: str) -> str:
    """The type a name says: its last extension, lower-case ("" for none)."""
    return PurePath(filename).suffix.lstrip(".").lower()


def check_name(settings: Settings, filename: str) -> None:
    """Raise :class:`FileRefused` when the name's type may not be sent."""
    kind = file_type(filename)
    if kind in _types(settings.refused_file_types):
        raise FileRefused(filename, "program")
    allowed = _types(settings.allowed_file_types)
    if allowed and kind not in allowed:
        raise FileRefused(filename, "not-allowed")


def check_head(filename: str, head: bytes) -> None:
    """Raise :class:`FileRefused` when the file's first bytes are a program or a script."""
    if filetype.match(head[:HEAD], matchers=PROGRAMS) is not None:
        raise FileRefused(filename, "program")


class HeadCheck:
    """Collects a file's first :data:`HEAD` bytes as they arrive in pieces of any size, and
    checks them once they are there (or the file ended before)."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.head = bytearray()
        self.done = False

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        self.head += data[: HEAD - len(self.head)]
        if len(self.head) >= HEAD:
            self.finish()

    def finish(self) -> None:
        if not self.done:
            self.done = True
            check_head(self.filename, bytes(self.head))
