"""The bench's HTTP client: one keep-alive connection with a cookie jar, like one browser tab,
and the portal's flows on top of it (sign in, chunked upload, send, open, download)."""

from __future__ import annotations

import http.client
import json
import os
import re
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sinetti_devbox import read_mailbox

MB = 1024 * 1024
IDLE_SECONDS = 4.0  # below the server's keep-alive timeout
BOUNDARY = "----sinettibench7d3c2a"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """HTTP/1.1 over one keep-alive connection; remembers cookies, follows no redirects."""

    def __init__(self, base: str) -> None:
        parsed = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=600)
        self.cookies: dict[str, str] = {}
        self.csrf = ""
        self.used = time.monotonic()

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def _remember(self, response: http.client.HTTPResponse) -> None:
        for header in response.headers.get_all("Set-Cookie") or []:
            pair, _, attributes = header.partition(";")
            name, _, value = pair.strip().partition("=")
            gone = re.search(r"max-age=0|expires=[^;]*1970", attributes, re.IGNORECASE)
            if gone:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    def open(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> http.client.HTTPResponse:
        """Send a request; the response with its body still unread."""
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = self.cookie_header()
        if time.monotonic() - self.used > IDLE_SECONDS:
            # The server closes a keep-alive connection idle for its timeout (hypercorn: 5 s),
            # maybe just as a request goes out: a new connection is opened instead.
            self.conn.close()
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        self.used = time.monotonic()
        self._remember(response)
        return response

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPResponse, bytes]:
        response = self.open(method, path, body, headers)
        return response.status, response, response.read()

    def form(self, path: str, fields: dict[str, str]) -> tuple[int, http.client.HTTPResponse]:
        body = urllib.parse.urlencode(fields).encode()
        status, response, _ = self.request(
            "POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        return status, response

    def page_csrf(self, path: str) -> str:
        status, _, page = self.request("GET", path)
        assert status == 200, (path, status)
        match = _CSRF.search(page.decode())
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def json(self, method: str, path: str, data: Any) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "X-CSRF-Token": self.csrf}
        status, _, body = self.request(method, path, json.dumps(data).encode(), headers)
        return status, json.loads(body)


def mailed_link(data_dir: Path, address: str, kind: str, timeout: float = 30) -> str:
    """The newest ``/s/…`` or ``/m/…`` link the development mailbox got for ``address``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        link = ""
        for entry in read_mailbox(data_dir):
            if entry["to"] == address:
                found = re.search(rf"/{kind}/[\w-]+", entry["text"])
                link = found.group(0) if found else link
        if link:
            return link
        time.sleep(0.05)
    raise RuntimeError(f"no /{kind}/ link was mailed to {address}")


def sign_in(base: str, data_dir: Path) -> Browser:
    """Register an address, open its personal link and press Continue; a browser on the
    compose page."""
    browser = Browser(base)
    csrf = browser.page_csrf("/")
    address = f"bench{uuid.uuid4().hex[:12]}@example.com"
    status, _ = browser.form("/", {"email": address, "csrf_token": csrf})
    assert status in (200, 303), status
    link = mailed_link(data_dir, address, "s")
    status, _ = browser.form(link, {"csrf_token": browser.page_csrf(link)})  # Continue
    assert status == 303, status
    browser.csrf = browser.page_csrf("/compose")
    return browser


def chunked_upload(browser: Browser, size: int, block: bytes) -> dict[str, Any]:
    """Upload ``size`` bytes through the chunked protocol, sequentially, on the browser's one
    connection; the attachment the server made of it. ``block`` holds at least one chunk."""
    status, state = browser.json(
        "POST",
        "/compose/uploads",
        {
            "filename": "big.bin",
            "size": size,
            "type": "application/octet-stream",
            "fingerprint": uuid.uuid4().hex,
        },
    )
    assert status == 201, (status, state)
    view = memoryview(block)
    path = f"/compose/uploads/{state['id']}"
    while not state["complete"]:
        offset = state["offset"]
        length = min(state["chunk_size"], size - offset)
        assert length <= len(view), "the block is smaller than a chunk"
        headers = {
            "Content-Type": "application/octet-stream",
            "Upload-Offset": str(offset),
            "X-CSRF-Token": browser.csrf,
        }
        status, _, body = browser.request("PUT", path, view[:length], headers)
        state = json.loads(body)
        assert status == 200, (status, state)
    assert state["attachment"]["size"] == size, state
    return dict(state["attachment"])


def multipart_body(fields: dict[str, str], file_mb: int) -> tuple[int, Iterator[bytes]]:
    """A multipart form: ``fields``, then one file of ``file_mb`` MB (none for 0)."""
    head = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    if file_mb:
        head += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="attachments"; '
            f'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    else:
        tail = f"--{BOUNDARY}--\r\n".encode()
    block = os.urandom(MB)

    def chunks() -> Iterator[bytes]:
        yield head
        for _ in range(file_mb):
            yield block
        yield tail

    return len(head) + file_mb * MB + len(tail), chunks()


def post_multipart(
    browser: Browser, path: str, fields: dict[str, str], file_mb: int
) -> tuple[int, http.client.HTTPResponse, bytes]:
    """POST a streamed multipart form on the browser's connection."""
    length, chunks = multipart_body(fields, file_mb)
    conn = browser.conn
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
    conn.putheader("Content-Length", str(length))
    if browser.cookies:
        conn.putheader("Cookie", browser.cookie_header())
    conn.endheaders()
    for chunk in chunks:
        conn.send(chunk)
    response = conn.getresponse()
    browser._remember(response)
    return response.status, response, response.read()


def send_message(browser: Browser, recipient: str) -> str:
    """Send the draft (with what was uploaded) to ``recipient``; the sent message's id."""
    fields = {
        "csrf_token": browser.csrf,
        "recipients": recipient,
        "subject": "Benchmark",
        "body": "A big attachment.",
        "action": "send",
    }
    status, response, _ = post_multipart(browser, "/compose", fields, 0)
    location = response.headers.get("Location", "")
    assert status == 303 and "/sent/" in location, (status, location)
    return location.rstrip("/").rsplit("/", 1)[1]


def open_as_recipient(base: str, data_dir: Path, address: str) -> tuple[Browser, str]:
    """The recipient's browser with the message open; and the message's ``/m/…`` path."""
    link = mailed_link(data_dir, address, "m")
    reader = Browser(base)
    csrf = reader.page_csrf(link)
    status, _ = reader.form(f"{link}/open", {"csrf_token": csrf})
    assert status == 303, status
    return reader, link


def download(browser: Browser, path: str) -> int:
    """GET ``path``, reading the body in 1 MiB pieces and throwing them away; its length."""
    response = browser.open("GET", path)
    assert response.status == 200, (path, response.status)
    received = 0
    while data := response.read(MB):
        received += len(data)
    return received
