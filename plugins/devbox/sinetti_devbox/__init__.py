"""The development mailbox: mail transport ``dev`` and SMS gateway ``dev``.

Nothing leaves the machine. Every e-mail and SMS is appended to
``PORTAL_DATA_DIR/devmailbox.jsonl``, printed to the console, and shown at ``/dev/mailbox`` —
a page that exists only while the ``dev`` mail transport is selected (development mode).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from quart import Blueprint

from portal import hookimpl
from portal.context import portal
from portal.mail.base import MailTransport, OutgoingMail
from portal.services import clock
from portal.sms.base import SmsGateway
from portal.web import render_page

HERE = Path(__file__).resolve().parent
_lock = asyncio.Lock()


def mailbox_path(data_dir: Path) -> Path:
    return data_dir / "devmailbox.jsonl"


async def _append(data_dir: Path, entry: dict[str, Any]) -> None:
    entry = {"at": clock.now().isoformat(timespec="seconds"), **entry}
    line = json.dumps(entry, ensure_ascii=False)
    async with _lock:
        data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - development only
        with mailbox_path(data_dir).open("a", encoding="utf-8") as fh:
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


class DevMailTransport(MailTransport):
    name = "dev"

    async def send(self, mail: OutgoingMail) -> None:
        await _append(
            self.settings.data_dir,
            {"kind": "email", "to": mail.to, "subject": mail.subject, "text": mail.text},
        )


class DevSmsGateway(SmsGateway):
    name = "dev"

    async def send(self, to: str, text: str) -> None:
        await _append(self.settings.data_dir, {"kind": "sms", "to": to, "text": text})


bp = Blueprint("devbox", __name__, template_folder="templates")


@bp.get("/dev/mailbox")
async def mailbox() -> Any:
    settings = portal().settings
    if settings.mail != "dev":
        return await render_page("not_found.html", status=404)
    entries = list(reversed(read_mailbox(settings.data_dir)))
    return await render_page("devbox/mailbox.html", entries=entries)


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
def register_translation_dirs() -> list[Path]:
    return [HERE / "locales"]
