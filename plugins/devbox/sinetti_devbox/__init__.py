"""The development mailbox: mail transport ``dev`` and SMS gateway ``dev``.

Nothing leaves the machine. Every e-mail and SMS is appended to
``PORTAL_DATA_DIR/devmailbox.jsonl`` (readable by the portal's user only) and printed to the
console. The page ``/dev/mailbox`` shows them while the ``dev`` mail transport is selected
and the portal is a developer's own: its base URL is loopback (``127.0.0.0/8``, ``::1``,
``localhost``), or ``PORTAL_DEV_MAILBOX=true`` says so explicitly. The page holds working
personal links and PINs, so a portal reachable by others that selected ``dev`` by mistake
must not publish them: there the page is a 404, and start-up says why.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from quart import Blueprint

from portal.api import (
    MailTransport,
    OutgoingMail,
    Settings,
    SmsGateway,
    TranslationDomain,
    hookimpl,
    now,
    render_page,
    settings,
)

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TRANSLATIONS = TranslationDomain("devbox", HERE / "locales")


def mailbox_path(data_dir: Path) -> Path:
    return data_dir / "devmailbox.jsonl"


async def _append(data_dir: Path, entry: dict[str, Any]) -> None:
    entry = {"at": now().isoformat(timespec="seconds"), **entry}
    line = json.dumps(entry, ensure_ascii=False)
    # No lock: nothing below awaits, so two appends of one event loop never interleave, and
    # each is one O_APPEND write of a whole line.
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # noqa: ASYNC240 - development only
    # Personal links and PINs: 0600 whatever the umask (an existing file keeps its mode).
    fd = os.open(mailbox_path(data_dir), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    banner = f"--- development mailbox: {entry['kind']} to {entry['to']} ---"
    print(
        f"{banner}\n{entry.get('subject', '')}\n{entry['text']}\n{'-' * len(banner)}",
        file=sys.stderr,
    )


def read_mailbox(data_dir: Path) -> list[dict[str, Any]]:
    path = mailbox_path(data_dir)
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def loopback_base_url(settings: Settings) -> bool:
    """Is the portal's public address this machine only (``127.0.0.0/8``, ``::1``,
    ``localhost``)?"""
    host = (urlsplit(settings.base_url).hostname or "").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def mailbox_shown(settings: Settings) -> bool:
    """Is ``/dev/mailbox`` served? Only in development mode on a developer's own portal."""
    return settings.mail == "dev" and (settings.dev_mailbox or loopback_base_url(settings))


class DevMailTransport(MailTransport):
    name = "dev"

    async def open(self) -> None:
        """Say at start-up where the mail goes, loudly when anyone could read it."""
        if self.settings.dev_mailbox:
            log.warning(
                "!!! THE DEVELOPMENT MAILBOX IS EXPOSED at %s: PORTAL_DEV_MAILBOX=true lets "
                "anyone who reaches this portal read every e-mail and SMS it sends, personal "
                "links and PINs included. Never set it on a portal that others can reach. !!!",
                self.settings.url("/dev/mailbox"),
            )
        elif loopback_base_url(self.settings):
            log.info(
                "mail `dev`: nothing is sent; the development mailbox is at %s",
                self.settings.url("/dev/mailbox"),
            )
        else:
            log.warning(
                "mail `dev` is selected, so no e-mail or SMS leaves this machine, but the "
                "development mailbox page is hidden because PORTAL_BASE_URL (%s) is not a "
                "loopback address: mails are only in %s and on the console. Select a real "
                "mail transport (PORTAL_MAIL=smtp), or set PORTAL_DEV_MAILBOX=true on a "
                "development machine.",
                self.settings.base_url,
                mailbox_path(self.settings.data_dir),
            )

    async def send(self, mail: OutgoingMail) -> None:
        await _append(
            self.settings.data_dir,
            {
                "kind": "email",
                "to": mail.to,
                "subject": mail.subject,
                "text": mail.text,
                "html": mail.html or "",
            },
        )


class DevSmsGateway(SmsGateway):
    name = "dev"

    async def send(self, to: str, text: str) -> None:
        await _append(self.settings.data_dir, {"kind": "sms", "to": to, "text": text})


bp = Blueprint("devbox", __name__, template_folder="templates")


@bp.get("/dev/mailbox")
async def mailbox() -> Any:
    current = settings()
    if not mailbox_shown(current):
        return await render_page("not_found.html", status=404)
    entries = list(reversed(read_mailbox(current.data_dir)))
    return await render_page(
        "devbox/mailbox.html", entries=entries, **TRANSLATIONS.template_functions()
    )


@hookimpl
def register_mail_transports() -> list[type[MailTransport]]:
    return [DevMailTransport]


@hookimpl
def register_sms_gateways() -> list[type[SmsGateway]]:
    return [DevSmsGateway]


@hookimpl
def register_blueprints() -> list[Blueprint]:
    return [bp]


@hookimpl
def register_translation_domains() -> list[TranslationDomain]:
    return [TRANSLATIONS]
