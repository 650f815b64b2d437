"""Helpers shared by the unit tests: multipart bodies, signing in, sending and opening a
message, counting rows and files."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from portal.testing import continue_with_link, csrf_from, links_in

FileSpec = tuple[str, str, bytes]  # (field name, file name, content)


def multipart(
    fields: Iterable[tuple[str, str]] = (),
    files: Iterable[FileSpec] = (),
    *,
    files_first: bool = False,
    boundary: str | None = None,
) -> tuple[bytes, str]:
    """A multipart/form-data body in exactly the order given (fields, then files)."""
    boundary = boundary or "sinetti-test-" + secrets.token_hex(8)
    parts: list[bytes] = []
    for name, value in fields:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    file_parts: list[bytes] = []
    for name, filename, content in files:
        file_parts.append(
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    ordered = file_parts + parts if files_first else parts + file_parts
    body = b"".join(ordered) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


async def page_text(response: Any) -> str:
    return str(await response.get_data(as_text=True))


async def csrf_of(client: Any, path: str = "/compose") -> str:
    return csrf_from(await page_text(await client.get(path)))


async def post_compose(
    client: Any,
    fields: dict[str, str],
    files: Iterable[FileSpec] = (),
    *,
    csrf: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST the compose form as a browser does: the CSRF field first, then fields, files."""
    token = csrf if csrf is not None else await csrf_of(client)
    body, content_type = multipart([("csrf_token", token), *fields.items()], files)
    return await client.post(
        "/compose", data=body, headers={"Content-Type": content_type, **(headers or {})}
    )


async def send_message(client: Any, fields: dict[str, str], files: Iterable[FileSpec] = ()) -> str:
    """Send a message with the compose form (``action=send``); the confirmation page's path."""
    response = await post_compose(client, {"action": "send", **fields}, files)
    assert response.status_code == 303, await page_text(response)
    return urlsplit(response.headers["Location"]).path


async def press_open(browser: Any, link: str, query: str = "?lang=en") -> Any:
    """Press Open message on the landing page of ``link`` (fetched with ``query``)."""
    csrf = await csrf_of(browser, link + query)
    return await browser.post(f"{link}/open", form={"csrf_token": csrf})


async def open_message(browser: Any, link: str) -> str:
    """Open the message of a recipient who needs nothing but the link; its page's HTML."""
    response = await press_open(browser, link)
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == link
    return await page_text(await browser.get(link))


def wrong_code(code: str) -> str:
    """Another code of the same length."""
    return str((int(code) + 1) % 10 ** len(code)).zfill(len(code))


async def newest_link(client: Any, address: str, kind: str = "s") -> str:
    """The path of the newest personal link (``/s/…`` or ``/m/…``) mailed to ``address``.

    Read from the outbox, or from the development mailbox once the worker delivered it.
    """
    from sinetti_devbox import read_mailbox

    from portal.models import OutboxItem
    from portal.services.outbox import opened_text

    data_dir = client.app.extensions["sinetti"].settings.data_dir
    secret_key = client.app.extensions["sinetti"].settings.secret_key

    def first_link(texts: Iterable[str]) -> str | None:
        for text in texts:
            for link in links_in(text):
                if f"/{kind}/" in link:
                    return "/" + link.split("/", 3)[3]
        return None

    async def find() -> str | None:
        items = await OutboxItem.filter(to_address=address).order_by("-id")
        if items and items[0].text:
            return first_link(opened_text(item, secret_key) for item in items)
        mailbox = reversed(read_mailbox(data_dir))
        return first_link(entry["text"] for entry in mailbox if entry["to"] == address)

    found = await eventually(find)
    assert found, f"no /{kind}/ link was mailed to {address}"
    return str(found)


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 5.0, interval: float = 0.02
) -> Any:
    """Poll ``check`` until it returns something truthy; return its last result."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result or loop.time() > deadline:
            return result
        await asyncio.sleep(interval)


async def sign_in_with(client: Any, address: str) -> str:
    """Register ``address`` in ``client`` and open its personal link; return the link path."""
    page = await client.get("/")
    response = await client.post(
        "/", form={"email": address, "csrf_token": csrf_from(await page_text(page))}
    )
    assert response.status_code == 200, await page_text(response)
    link = await newest_link(client, address.lower(), "s")
    await continue_with_link(client, link)
    return link


async def sign_in_delivered(
    client: Any, address: str, delivered: Callable[[], Iterable[str]]
) -> None:
    """Register ``address`` in ``client`` and open its personal link, read from the outbox or,
    once the worker delivered it, from ``delivered()`` (the texts a mail transport received)."""
    from portal.models import OutboxItem
    from portal.services.outbox import opened_text

    secret_key = client.app.extensions["sinetti"].settings.secret_key
    page = await client.get("/")
    await client.post("/", form={"email": address, "csrf_token": csrf_from(await page_text(page))})

    async def link() -> str | None:
        item = await OutboxItem.get(to_address=address)
        texts = [opened_text(item, secret_key), *delivered()]
        found = [found for text in texts for found in links_in(text)]
        return found[0] if found else None

    found = await eventually(link)
    assert found
    await continue_with_link(client, urlsplit(found).path)


async def queued_mails_to(address: str) -> list[Any]:
    """The e-mails the outbox holds for ``address`` (sent or not), oldest first."""
    from portal.models import Channel, OutboxItem

    return list(await OutboxItem.filter(channel=Channel.EMAIL, to_address=address).order_by("id"))


async def row_counts() -> dict[str, int]:
    """How many rows every table holds."""
    from portal import models

    return {
        name: await getattr(models, name).all().count()
        for name in (
            "Sender",
            "SenderLink",
            "RegistrationEvent",
            "Message",
            "Recipient",
            "Attachment",
            "OutboxItem",
            "AccessCode",
            "Upload",
        )
    }


def plain_settings(data_dir: Path | str, **override: Any) -> Any:
    """Settings from ``override`` alone (no environment): a data directory and a secret key."""
    from portal.config import load_settings

    return load_settings(
        environ={}, override={"data_dir": data_dir, "secret_key": "k" * 40, **override}
    )


def stored_files(data_dir: Path | str) -> list[Path]:
    """Every file the local storage backend holds, finished or temporary."""
    root = Path(data_dir) / "files"
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def token_of(link: str) -> str:
    """The token of a personal link path (``/m/<token>``)."""
    return link.rstrip("/").rsplit("/", 1)[1]


def delivered_sms(client: Any, phone: str) -> list[str]:
    """The texts of every SMS the dev gateway delivered to ``phone``, oldest first."""
    from sinetti_devbox import read_mailbox

    data_dir = client.app.extensions["sinetti"].settings.data_dir
    return [
        entry["text"]
        for entry in read_mailbox(data_dir)
        if entry["kind"] == "sms" and entry["to"] == phone
    ]


async def newest_pin(client: Any, phone: str, count: int = 1, length: int = 6) -> str:
    """The code in the newest SMS to ``phone``, once ``count`` of them were delivered."""
    import re

    async def enough() -> list[str]:
        texts = delivered_sms(client, phone)
        return texts if len(texts) >= count else []

    texts = await eventually(enough)
    assert len(texts) >= count, f"{len(texts)} SMS delivered to {phone}, expected {count}"
    codes = re.findall(rf"(?<!\d)\d{{{length}}}(?!\d)", texts[-1])
    assert len(codes) == 1, texts[-1]
    return str(codes[0])


async def all_sms_delivered() -> None:
    """Wait until the app's worker delivered every SMS and recorded it: a PIN's validity
    starts then, and until then its page says the code is on its way."""
    from portal.models import Channel

    await all_delivered(Channel.SMS)


async def all_delivered(channel: Any = None) -> None:
    """Wait until the app's worker delivered (and recorded) everything queued, or everything
    of ``channel``: a test that changes what a delivery records must not race it."""
    from portal.models import OutboxItem

    waiting = OutboxItem.filter(sent_at__isnull=True)
    if channel is not None:
        waiting = waiting.filter(channel=channel)

    async def none_waiting() -> bool:
        return not await waiting.exists()

    assert await eventually(none_waiting, timeout=30), "a queued item was not delivered"


async def mail_content(app: Any, item: Any) -> tuple[str, str]:
    """The text and html of the outbox mail ``item``: opened while it waits, else as the
    development mailbox received it (the outbox clears a mail's content once it is delivered,
    and the app's worker may deliver it before the test reads it)."""
    from sinetti_devbox import read_mailbox

    from portal.models import OutboxItem
    from portal.services.outbox import opened_html, opened_text

    settings = app.extensions["sinetti"].settings

    async def found() -> tuple[str, str] | None:
        fresh = await OutboxItem.get(id=item.id)
        if fresh.text:
            key = settings.secret_key
            return opened_text(fresh, key), opened_html(fresh, key) or ""
        for entry in reversed(read_mailbox(settings.data_dir)):
            if entry["kind"] == "email" and (entry["to"], entry["subject"]) == (
                fresh.to_address,
                fresh.subject,
            ):
                return str(entry["text"]), str(entry.get("html", ""))
        return None

    content = await eventually(found)
    assert content, f"outbox item {item.id}: neither queued nor in the development mailbox"
    return content


async def attachment_bytes(app: Any, attachment: Any) -> bytes:
    """The plaintext of a stored attachment, opened with its message's data key (what is
    stored is sealed: compare this, never the stored bytes, with what was uploaded)."""
    from portal.services import stored_files

    async with app.app_context():
        storage = app.extensions["sinetti"].providers.storage
        data_key = await stored_files.data_key(attachment.message_id)
        reading = stored_files.read_attachment(storage, attachment, data_key)
        return b"".join([chunk async for chunk in reading])


async def opened(app: Any, *rows: Any) -> Any:
    """Rows read straight from the database with their confidential fields opened, as the
    services open them (what is stored is sealed with the message's data key). Returns the
    row, or the rows when several are given."""
    from portal.services import message_fields

    app = getattr(app, "app", app)  # a test client or the app
    async with app.app_context():
        await message_fields.open_rows(*rows)
    return rows[0] if len(rows) == 1 else rows


async def rows_where(app: Any, model: Any, **wanted: Any) -> list[Any]:
    """The rows of ``model`` whose fields, opened, equal ``wanted`` (a sealed column cannot be
    queried by its plain value: the rows are read and opened)."""
    rows = list(await model.all())
    if rows:
        await opened(app, *rows)
    return [row for row in rows if all(getattr(row, k) == v for k, v in wanted.items())]


async def row_where(app: Any, model: Any, **wanted: Any) -> Any:
    """The one row of ``model`` whose opened fields equal ``wanted``."""
    found = await rows_where(app, model, **wanted)
    assert len(found) == 1, f"{len(found)} {model.__name__} rows with {wanted}"
    return found[0]


async def file_names(app: Any, **filters: Any) -> list[str]:
    """The opened names of the attachments matching ``filters``, in their order."""
    from portal.models import Attachment

    rows = list(await Attachment.filter(**filters).order_by("id"))
    if rows:
        await opened(app, *rows)
    return [row.filename for row in rows]


async def scan_settled(message_id: Any, timeout: float = 60) -> Any:
    """The message's malware-check state once it is no longer ``checking``."""
    from portal.models import Message, ScanState

    async def done() -> Any:
        state = (await Message.get(id=message_id)).scan_state
        return None if state == ScanState.CHECKING else state

    found = await eventually(done, timeout=timeout)
    assert found is not None, f"message {message_id} still being checked"
    return found
