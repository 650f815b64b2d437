"""Typed settings, read once from ``PORTAL_*`` environment variables (and an optional TOML file).

Every core setting is a field of :class:`Settings`. Variables with a prefix that a selected
plugin claims (``PORTAL_SMTP_*`` for the ``smtp`` mail transport, say) are handed to that
plugin as ``plugin_options``. Anything else that starts with ``PORTAL_`` stops start-up: a
misspelled variable must never be silently ignored.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from portal.proxies import parse_networks

PREFIX = "PORTAL_"
LOCALES = ("fi", "sv", "en")
MB = 1024 * 1024


class ConfigError(Exception):
    """A setting is missing, unknown or invalid. The message names the variable."""


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{PREFIX}{name.upper()}: expected true or false, got {raw!r}")


def _parse_int(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{PREFIX}{name.upper()}: expected a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{PREFIX}{name.upper()}: must be at least {minimum}, got {value}")
    return value


#: Programs and scripts that Windows, macOS or Linux run when opened, and installers.
REFUSED_FILE_TYPES = (
    *("exe", "com", "scr", "pif", "cpl", "dll", "sys", "msi", "msp", "msix", "appx", "appxbundle"),
    *("bat", "cmd", "ps1", "psm1", "psd1", "vbs", "vbe", "js", "jse", "wsf", "wsh", "wsc"),
    *("hta", "lnk", "scf", "reg", "inf", "msc", "gadget", "application", "jar", "apk"),
    *("app", "command", "sh", "bash", "csh", "ksh", "zsh", "run", "elf", "deb", "rpm"),
)


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in raw.replace(";", ",").split(",") if part.strip())


@dataclasses.dataclass(frozen=True)
class Settings:
    """The portal's configuration. Field ``foo_bar`` is read from ``PORTAL_FOO_BAR``."""

    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    data_dir: Path = Path("data")
    database_url: str = ""
    storage: str = "local"
    #: The key provider that keeps the key-encryption keys (``local``: PORTAL_KEK or a file).
    keys: str = "local"
    #: The malware scanner of attachments (``none``: no scanning; ``clamav``: a clamd).
    scanner: str = "none"
    #: When the scanner cannot be reached, let messages go unscanned instead of waiting
    #: (not recommended).
    scan_fail_open: bool = False
    mail: str = "dev"
    mail_from: str = "sinetti@localhost"
    sms: str = "dev"
    #: The verification provider of recipients without and with a phone number (``.sec``).
    verification: str = "none"
    phone_verification: str = "sms-pin"
    allowed_recipient_domains: tuple[str, ...] = ("example.fi",)
    theme: str = "default"
    #: The ways a sender may sign in, as the front page offers them (``email-link``: the
    #: personal link e-mailed after registration; plugins add others).
    sign_in: tuple[str, ...] = ("email-link",)
    default_locale: str = "fi"
    timezone: str = "Europe/Helsinki"
    max_attachments_bytes: int = 400 * MB
    #: File types (name extensions) that are refused: programs and scripts. A file whose
    #: bytes are a program or a script is refused whatever its name.
    refused_file_types: tuple[str, ...] = REFUSED_FILE_TYPES
    #: When not empty, only files of these types (name extensions) are accepted.
    allowed_file_types: tuple[str, ...] = ()
    max_recipients: int = 50
    #: Unfinished chunked uploads with no new chunk for this long are cleaned up.
    upload_abandon_hours: int = 24
    phone_suffix: str = ".sec"
    link_valid_days: int = 30
    registrations_per_address_per_day: int = 5
    registrations_per_ip_per_hour: int = 30
    session_idle_minutes: int = 60
    #: A session ends this long after sign-in however busy it is (ASVS V7 absolute lifetime).
    session_max_hours: int = 12
    #: Unsent drafts (and their files) are deleted this long after they were started.
    draft_hours: int = 24
    #: Sent messages, their files, replies and recipient links are deleted this long after
    #: sending (``sinetti purge`` and the periodic purge of every server process).
    retention_days: int = 30
    #: Audit events are kept this long, apart from the content they describe.
    audit_retention_days: int = 365
    #: What one sender's unsent drafts may hold together; 0 means twice the message limit.
    max_draft_bytes_per_sender: int = 0
    #: Countries (ISO 3166 codes) whose mobile numbers may get an SMS PIN.
    sms_allowed_regions: tuple[str, ...] = ("fi",)
    #: Serve the development mailbox although the base URL is not loopback (never in production).
    dev_mailbox: bool = False
    #: Reverse proxies (addresses or networks) whose X-Forwarded-For / Forwarded are believed.
    trusted_proxies: tuple[str, ...] = ()
    #: The Ed25519 key that signs submission receipts (PEM, PKCS #8); empty: the key that the
    #: portal generates into the data directory (:attr:`signing_key_path`).
    signing_key_file: str = ""
    outbox_poll_seconds: int = 5
    outbox_max_attempts: int = 12
    #: How long one delivery (an SMTP session, a gateway request) may take; an item's claim
    #: lasts this plus a margin, so a crashed worker's items are delivered again soon after.
    outbox_delivery_timeout_seconds: int = 30
    #: Deliveries in flight at once in each lane (e-mail, SMS) of each server process.
    outbox_concurrency: int = 4
    #: The wait before a failed item's second attempt; it doubles with each further attempt, up
    #: to an hour. (Tests of real outages shorten it to a second.)
    outbox_retry_seconds: int = 10
    #: How long a claim outlives the delivery timeout: the items of a killed worker are
    #: delivered again this long plus the timeout after it claimed them.
    outbox_claim_margin_seconds: int = 30
    config_file: str = ""
    #: PORTAL_* variables no core field knows; the selected plugins claim them by prefix.
    plugin_options: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def signing_key_path(self) -> Path:
        """The receipt-signing key: ``PORTAL_SIGNING_KEY_FILE``, or the generated one."""
        if self.signing_key_file:
            return Path(self.signing_key_file)
        return self.data_dir / "receipt-signing.key"

    def url(self, path: str) -> str:
        """An absolute URL of the portal for ``path`` (used in e-mails)."""
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def options_for(self, prefix: str) -> dict[str, str]:
        """The plugin options under ``prefix`` (``"SMTP_"``), keys lower-cased and unprefixed."""
        return {
            key[len(prefix) :].lower(): value
            for key, value in self.plugin_options.items()
            if key.startswith(prefix)
        }


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "plugin_options"}


def _convert(name: str, raw: Any) -> Any:
    field = _FIELDS[name]
    default = field.default
    if isinstance(raw, bool) and isinstance(default, bool):
        return raw
    # Numbers from TOML or an override are checked like the text of a variable (minimum too).
    if isinstance(raw, list):
        raw = ",".join(str(item) for item in raw)
    raw = str(raw)
    if isinstance(default, bool):
        return _parse_bool(name, raw)
    if isinstance(default, int):
        return _parse_int(name, raw, minimum=1)
    if isinstance(default, tuple):
        return _parse_list(raw)
    if isinstance(default, Path):
        return Path(raw)
    return raw.strip()


def load_settings(
    environ: Mapping[str, str] | None = None, override: Mapping[str, Any] | None = None
) -> Settings:
    """Read, validate and complete the settings.

    ``environ`` defaults to ``os.environ``; ``override`` (lower-case field names) wins over both
    the environment and the TOML file and is what tests use.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    plugin_options: dict[str, str] = {}

    file_name = (override or {}).get("config_file") or environ.get(PREFIX + "CONFIG_FILE", "")
    if file_name:
        try:
            with open(file_name, "rb") as fh:
                from_file = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{PREFIX}CONFIG_FILE: cannot read {file_name}: {exc}") from None
        for key, raw in from_file.items():
            _take(key.lower(), raw, values, plugin_options)

    for key, raw in environ.items():
        if key.startswith(PREFIX):
            _take(key[len(PREFIX) :].lower(), raw, values, plugin_options)

    for key, raw in (override or {}).items():
        if key == "plugin_options":
            plugin_options.update(raw)
        else:
            _take(key, raw, values, plugin_options)

    settings = Settings(**values, plugin_options=plugin_options)
    return _complete(settings)


def _take(key: str, raw: Any, values: dict[str, Any], plugin_options: dict[str, str]) -> None:
    if key in _FIELDS:
        values[key] = _convert(key, raw)
    else:
        plugin_options[key.upper()] = str(raw)


def _complete(settings: Settings) -> Settings:
    """Check cross-field rules and fill in derived defaults."""
    parts = urlsplit(settings.base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{PREFIX}BASE_URL: expected an http(s) URL, got {settings.base_url!r}")
    if settings.default_locale not in LOCALES:
        raise ConfigError(
            f"{PREFIX}DEFAULT_LOCALE: expected one of {', '.join(LOCALES)}, "
            f"got {settings.default_locale!r}"
        )
    if not settings.allowed_recipient_domains:
        raise ConfigError(f"{PREFIX}ALLOWED_RECIPIENT_DOMAINS: list at least one domain")
    if not settings.phone_suffix.startswith(".") or len(settings.phone_suffix) < 2:
        raise ConfigError(f"{PREFIX}PHONE_SUFFIX: must start with a dot, e.g. .sec")
    _check_sms_regions(settings.sms_allowed_regions)
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{PREFIX}TIMEZONE: unknown time zone {settings.timezone!r}") from None
    try:
        parse_networks(settings.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(f"{PREFIX}TRUSTED_PROXIES: {exc}") from None

    data_dir = settings.data_dir.resolve()
    changes: dict[str, Any] = {"data_dir": data_dir}
    if not settings.database_url:
        changes["database_url"] = f"sqlite://{data_dir / 'sinetti.sqlite3'}"
    elif not settings.database_url.startswith(("sqlite://", "postgres://", "asyncpg://")):
        raise ConfigError(
            f"{PREFIX}DATABASE_URL: expected sqlite://… or postgres://…, "
            f"got {settings.database_url.split(':', 1)[0]}://…"
        )
    if not settings.max_draft_bytes_per_sender:
        changes["max_draft_bytes_per_sender"] = 2 * settings.max_attachments_bytes
    if not settings.secret_key:
        changes["secret_key"] = _stored_secret_key(data_dir)
    elif len(settings.secret_key) < 32:
        raise ConfigError(f"{PREFIX}SECRET_KEY: use at least 32 random characters")
    return dataclasses.replace(settings, **changes)


def _check_sms_regions(regions: tuple[str, ...]) -> None:
    """Every code must be a region the phone-number library knows: a typo (``fin``, ``uk``)
    would otherwise silently refuse every number of the country meant."""
    import phonenumbers  # only here: the rest of the settings need no phone metadata

    if not regions:
        raise ConfigError(f"{PREFIX}SMS_ALLOWED_REGIONS: list at least one country code, e.g. fi")
    unknown = [code for code in regions if code.upper() not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ConfigError(
            f"{PREFIX}SMS_ALLOWED_REGIONS: unknown country code {', '.join(map(repr, unknown))}; "
            "use ISO 3166 codes such as fi, se, ee"
        )


def _stored_secret_key(data_dir: Path) -> str:
    """A development convenience: a random key kept in the data directory across restarts."""
    path = data_dir / "secret.key"
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
