"""The built-in key provider ``local``: key-encryption keys (KEKs) from ``PORTAL_KEK`` or a
key file.

- ``PORTAL_KEK``: one or more KEKs, base64 of 32 random bytes each, comma-separated. The first
  wraps new data keys; the others still unwrap (rotation: put a new key first, run
  ``sinetti keys rotate``, then drop the old one).
- ``PORTAL_KEK_FILE``: the same, one key per line (default ``<data dir>/kek.keys``). When
  neither exists the file is made with one new key at first start and a warning is logged:
  a KEK beside the data it protects is for development only. In production keep the file on
  another volume (or in a secret store mounted read-only), or use a KMS plugin.

A KEK is named by its fingerprint (the first 16 hex digits of a SHA-256 of it), so the
wrapped keys say which KEK opens them without revealing anything of it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from pathlib import Path
from typing import ClassVar

from portal.api import (
    ConfigError,
    KeyProvider,
    KeyUnavailable,
    KeyWrapper,
    Settings,
    WrappedKey,
    hookimpl,
)

log = logging.getLogger(__name__)

KEK_BYTES = 32


def fingerprint(kek: bytes) -> str:
    return hashlib.sha256(b"sinetti kek id|" + kek).hexdigest()[:16]


def parse_keys(text: str, where: str) -> list[bytes]:
    """The KEKs of ``text`` (base64, separated by commas or lines), in order."""
    keys = []
    for part in text.replace(",", "\n").split():
        try:
            key = base64.b64decode(part, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEK_BYTES:
            raise ConfigError(f"{where}: each key must be base64 of {KEK_BYTES} random bytes")
        keys.append(key)
    return keys


def new_kek_line() -> str:
    return base64.b64encode(os.urandom(KEK_BYTES)).decode("ascii")


class LocalKeyProvider(KeyProvider):
    name = "local"
    settings_prefix = "KEK"
    # PORTAL_KEK is the option "" and PORTAL_KEK_FILE the option "_file".
    known_options: ClassVar[frozenset[str] | None] = frozenset({"", "_file"})

    def __init__(self, settings: Settings, options: dict[str, str]) -> None:
        super().__init__(settings, options)
        given = options.get("", "").strip()
        self.file = Path(options.get("_file", "").strip() or settings.data_dir / "kek.keys")
        self._from_env = bool(given)
        self._keys = parse_keys(given, "PORTAL_KEK") if given else []
        self._stamp: int | None = None  # the key file's mtime when it was read

    async def open(self) -> None:
        if self._from_env:
            return
        if not self.file.exists() and self._create_once():
            log.warning(
                "made a new key-encryption key in %s, beside the data it protects: fine for "
                "development; in production keep it apart (PORTAL_KEK, PORTAL_KEK_FILE on "
                "another volume) or use a KMS (PORTAL_KEYS=aws-kms)",
                self.file,
            )
        self._read()
        if not self._keys:
            raise ConfigError(f"PORTAL_KEK_FILE ({self.file}): holds no key")

    def _read(self) -> None:
        stamp = self.file.stat().st_mtime_ns
        self._keys = parse_keys(self.file.read_text(), f"PORTAL_KEK_FILE ({self.file})")
        self._stamp = stamp

    def _refresh(self) -> None:
        """Read the key file again if it changed since: ``sinetti keys rotate --new-key`` in
        another process put a new key first. A running server then wraps new data keys with
        it at once and opens the keys the rotation re-wraps (one ``stat`` a call)."""
        if self._from_env or self._stamp is None:
            return
        try:
            changed = self.file.stat().st_mtime_ns != self._stamp
        except FileNotFoundError:
            return  # keep the keys in memory; the operator is moving the file
        if changed:
            self._read()

    def _create_once(self) -> bool:
        """Make the key file with one new key unless it exists; True when this process made
        it. Processes starting together (``sinetti serve --workers 2``) agree on one file: each
        writes its key to a temporary file of its own and links it into place, which fails
        for all but the first."""
        self.file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.file.with_name(f".{self.file.name}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(new_kek_line() + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.link(temporary, self.file)
        except FileExistsError:
            return False
        finally:
            temporary.unlink(missing_ok=True)
        return True

    def add_key(self) -> str:
        """Put a new KEK first in the key file (it wraps from now on); its id."""
        if self._from_env:
            raise KeyUnavailable(
                "PORTAL_KEK is set: put the new key first in it, then run sinetti keys rotate"
            )
        old = self.file.read_text() if self.file.exists() else ""
        line = new_kek_line()
        temporary = self.file.with_suffix(".new")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(line + "\n" + old)
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(self.file)
        self._read()
        return fingerprint(self._keys[0])

    def _kek(self, kek_id: str) -> bytes:
        self._refresh()
        for key in self._keys:
            if fingerprint(key) == kek_id:
                return key
        raise KeyUnavailable(f"no key-encryption key {kek_id} (was it removed too early?)")

    @property
    def current_kek_id(self) -> str:
        self._refresh()
        if not self._keys:
            raise KeyUnavailable("the key provider is not open")
        return fingerprint(self._keys[0])

    async def wrap(self, plain: bytes, context: bytes) -> WrappedKey:
        kek_id = self.current_kek_id
        return WrappedKey(kek_id, KeyWrapper(self._kek(kek_id)).wrap(plain, context))

    async def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        return KeyWrapper(self._kek(wrapped.kek_id)).unwrap(wrapped.blob, context)


@hookimpl
def register_key_providers() -> list[type[KeyProvider]]:
    return [LocalKeyProvider]
