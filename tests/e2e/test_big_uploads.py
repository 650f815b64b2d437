"""Big attachments in a real browser (uploader.js and the chunked upload protocol).

Chosen files go up at once, in chunks of 8 MiB, with a progress bar per file and one for all
of them. The uploads survive a connection reset in the middle of a chunk (a TCP proxy between
browser and server cuts every connection), the browser going offline, and a reload of the page;
they continue from where the server has them, never from the start. Send waits for them. The
zip the sender saves holds every byte. The main flow runs against the local storage backend and
against S3 (moto's server on loopback).

These tests have their own servers with a 450 MiB attachment limit. Chromium's network
emulation (CDP) slows the uploads down where a state has to last long enough to be looked at;
without it 100 MB go up in about two seconds here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    PortalServer,
    check_accessible,
    check_page_in,
    check_this_page,
    download,
    new_recipient,
    running_portal_server,
    save_screenshot,
)
from playwright.sync_api import Browser, Page, Request, Response, expect

from portal.testing import CuttableProxy, S3Server, running_s3_server

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
CHUNK = 8 * MiB  # portal.services.chunked.CHUNK_SIZE
BIG_LIMIT = 450 * MiB
RECIPIENT = new_recipient("kirjaamo")
UPLOAD_PATH = re.compile(r"/compose/uploads/([0-9a-f-]{36})$")


# -- servers -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def big_server(mail, sms_gateway, tmp_path_factory) -> Iterator[PortalServer]:
    """A server with a 450 MiB limit and the local storage backend."""
    env = {"PORTAL_MAX_ATTACHMENTS_BYTES": str(BIG_LIMIT)}
    with running_portal_server(mail, sms_gateway, tmp_path_factory, "big", env) as server:
        yield server


@dataclasses.dataclass
class S3PortalServer:
    server: PortalServer
    s3: S3Server
    bucket: str


@pytest.fixture(scope="session")
def s3_big_server(mail, sms_gateway, tmp_path_factory) -> Iterator[S3PortalServer]:
    """A server with a 450 MiB limit storing in a bucket of moto's S3 server on loopback."""
    with running_s3_server() as s3:
        bucket = s3.create_bucket()
        env = {f"PORTAL_{key.upper()}": value for key, value in s3.portal_config(bucket).items()}
        env["PORTAL_MAX_ATTACHMENTS_BYTES"] = str(BIG_LIMIT)
        with running_portal_server(mail, sms_gateway, tmp_path_factory, "s3", env) as server:
            yield S3PortalServer(server, s3, bucket)


def unfinished_in_storage(request: pytest.FixtureRequest, storage: str) -> list[str]:
    """What the storage backend holds of uploads that never finished."""
    if storage == "s3":
        s3 = request.getfixturevalue("s3_big_server")
        answer = s3.s3.client().list_multipart_uploads(Bucket=s3.bucket)
        return [upload["Key"] for upload in answer.get("Uploads", [])]
    tmp = request.getfixturevalue("big_server").data_dir / "files" / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


# -- the network between browser and server ------------------------------------------------------


class Network:
    """Chromium's network emulation for one page: a slower upload, or no network at all (the
    browser's ``online``/``offline`` events fire as for a real one)."""

    def __init__(self, page: Page) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Network.enable")
        self.upload = -1.0
        self.is_offline = False

    def _apply(self) -> None:
        self.cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": self.is_offline,
                "latency": 0,
                "downloadThroughput": -1,
                "uploadThroughput": self.upload,
            },
        )

    def throttle(self, bytes_per_second: float = -1) -> None:
        self.upload = bytes_per_second
        self._apply()

    def offline(self, offline: bool = True) -> None:
        self.is_offline = offline
        self._apply()


@dataclasses.dataclass
class Put:
    upload: str
    offset: int
    at: float
    status: int | None = None  # the server's answer; None: none came (cut, offline)
    failed: bool = False


class UploadLog:
    """The chunked-upload requests of a page as the browser made them and the server answered:
    announcements (POST) and their answers, and every chunk (PUT) with its Upload-Offset."""

    def __init__(self, page: Page) -> None:
        self.puts: list[Put] = []
        self.announced: dict[str, dict[str, Any]] = {}  # filename → the server's answer
        self._by_request: dict[int, Put] = {}
        page.on("request", self._request)
        page.on("response", self._response)
        page.on("requestfailed", self._failed)

    def _request(self, request: Request) -> None:
        match = UPLOAD_PATH.search(request.url)
        if request.method == "PUT" and match:
            put = Put(match[1], int(request.headers["upload-offset"]), time.monotonic())
            self.puts.append(put)
            self._by_request[id(request)] = put

    def _response(self, response: Response) -> None:
        request = response.request
        if request.method == "POST" and request.url.endswith("/compose/uploads"):
            answer = response.json()
            self.announced[answer.get("filename") or answer["attachment"]["filename"]] = answer
        put = self._by_request.get(id(request))
        if put is not None:
            put.status = response.status

    def _failed(self, request: Request) -> None:
        put = self._by_request.get(id(request))
        if put is not None:
            put.failed = True

    def of(self, upload: str) -> list[Put]:
        return [put for put in self.puts if put.upload == upload]

    def accepted(self, upload: str) -> list[int]:
        return [put.offset for put in self.of(upload) if put.status == 200]


def wait_until(page: Page, condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll ``condition`` (letting Playwright deliver its events) until it is true."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        page.wait_for_timeout(25)
    return result


# -- files -----------------------------------------------------------------------------------


def random_file(path: Path, size: int) -> Path:
    """``size`` random bytes (written in 8 MiB blocks)."""
    with path.open("wb") as fh:
        left = size
        while left:
            block = os.urandom(min(8 * MiB, left))
            fh.write(block)
            left -= len(block)
    return path


def sha256_of(read: Callable[[int], bytes]) -> str:
    digest = hashlib.sha256()
    while block := read(MiB):
        digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return sha256_of(fh.read)


def progress_value(page: Page, name: str) -> float:
    return float(page.get_by_role("progressbar", name=name, exact=True).evaluate("p => p.value"))


@pytest.fixture
def open_page(browser: Browser, browser_context_args: dict[str, Any]) -> Iterator[Any]:
    """``open_page(base_url)``: a page of a fresh browser context on another server."""
    contexts = []

    def run(base_url: str) -> Page:
        context = browser.new_context(**{**browser_context_args, "base_url": base_url})
        contexts.append(context)
        return context.new_page()

    yield run
    for context in contexts:
        context.close()


def fill_in_message(page: Page, subject: str) -> None:
    page.get_by_label("Recipients", exact=True).fill(RECIPIENT)
    page.get_by_label("Subject", exact=True).fill(subject)
    page.get_by_label("Message", exact=True).fill("Aineisto liitteenä.")


# -- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_big_files_upload_with_progress_survive_a_dropped_network_and_send_when_done(
    storage: str, request: pytest.FixtureRequest, open_page, sign_in, tmp_path: Path
) -> None:
    server: PortalServer = (
        request.getfixturevalue("big_server")
        if storage == "local"
        else request.getfixturevalue("s3_big_server").server
    )
    proxy = CuttableProxy(int(server.url.rsplit(":", 1)[1]))
    request.addfinalizer(proxy.close)
    page = open_page(proxy.url)
    sign_in(page, f"big.{storage}")
    page.goto("/compose")  # through the proxy from here on
    subject = f"Iso aineisto ({storage})"
    fill_in_message(page, subject)
    first = random_file(tmp_path / "Aineisto – osa 1.bin", 64 * MiB + 12_345)
    second = random_file(tmp_path / "valokuvat.zip", 44 * MiB + 777)
    total = first.stat().st_size + second.stat().st_size
    assert total > 100 * 1000 * 1000
    log = UploadLog(page)
    network = Network(page)
    network.throttle(6 * MiB)

    # 1. Chosen, the files go up at once: a bar per file and one for both, all moving.
    page.get_by_label("Attachments", exact=True).set_input_files([first, second])
    first_bar = page.get_by_role("progressbar", name=f"Uploading {first.name}", exact=True)
    second_bar = page.get_by_role("progressbar", name=f"Uploading {second.name}", exact=True)
    overall = page.get_by_role("progressbar", name="All files together", exact=True)
    for bar in (first_bar, second_bar, overall):
        expect(bar).to_be_visible()
    seen: set[float] = set()

    def moved() -> bool:
        seen.add(progress_value(page, "All files together"))
        return len(seen - {0.0}) >= 3

    wait_until(page, moved, "the overall bar to move")
    assert progress_value(page, f"Uploading {first.name}") > 0
    numbers = page.locator("#uploads-total-text")
    expect(numbers).to_contain_text(re.compile(r"MB of 108\sMB \(\d+\s%\)"))
    expect(numbers).to_contain_text(re.compile(r"(About \d+ min|Less than a minute) left"))
    expect(page.locator("#uploads li").filter(has_text=second.name)).to_contain_text(
        "Waiting for its turn"
    )
    expect(page.get_by_role("button", name="Attach the chosen files")).to_be_hidden()
    if storage == "local":
        check_this_page(page, "the compose page while uploading", "big-uploading")

    # 2. The network drops in the middle of a chunk: the chunk is lost, the upload waits, asks
    #    the server where it stands and continues from there.
    network.throttle(16 * MiB)  # a chunk takes half a second
    upload = log.announced[first.name]["id"]
    wait_until(page, lambda: len(log.accepted(upload)) >= 2, "two chunks to arrive")
    started = len(log.puts)
    in_flight = wait_until(page, lambda: log.puts[started:], "the next chunk to start")[0]
    page.wait_for_timeout(150)  # part of it is on its way
    proxy.cut(2.5)
    first_item = page.locator("#uploads li").filter(has_text=first.name)
    expect(first_item).to_contain_text("The connection was lost. Trying again in")
    wait_until(page, lambda: in_flight.failed, "the cut chunk to fail")
    wait_until(page, lambda: in_flight.offset in log.accepted(upload), "the cut chunk again")

    # 3. The browser goes offline: it says so, and continues as soon as it is back online
    #    (not when the back-off would next try).
    network.offline(True)
    expect(page.locator("#uploads")).to_contain_text("No network connection.")
    page.wait_for_timeout(4000)
    back = time.monotonic()
    network.offline(False)
    wait_until(
        page,
        lambda: [p for p in log.puts if p.at > back and p.status == 200],
        "a chunk after the network came back",
    )
    assert next(p for p in log.puts if p.at > back).at - back < 1.5, "not resumed when online"

    # 4. Send while the files are still uploading: the page says it waits, then sends.
    network.throttle(24 * MiB)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("#send-waiting")).to_have_text(
        "Sending will start when the files have been uploaded."
    )
    expect(page).to_have_url(re.compile(r"/compose$"))
    assert log.announced[second.name]["offset"] == 0
    network.throttle()
    page.wait_for_url(re.compile(r"/sent/[0-9a-f-]+$"), timeout=60_000)
    expect(page.get_by_role("heading", level=1)).to_have_text("Message sent")
    main = page.locator("main")
    hashes = {first.name: file_sha256(first), second.name: file_sha256(second)}
    for name, digest in hashes.items():
        expect(main).to_contain_text(name)
        expect(main).to_contain_text(digest)  # the SHA-256 the server computed

    # 5. Every chunk arrived once, in order, and none that had arrived before the cut was sent
    #    again. Counted where the server is: what went through the proxy is the files and the
    #    one chunk lost halfway, little more.
    for path in (first, second):
        accepted = log.accepted(log.announced[path.name]["id"])
        assert accepted == list(range(0, path.stat().st_size, CHUNK)), path.name
    before_cut = sorted(put.offset for put in log.of(upload) if put.offset < in_flight.offset)
    assert before_cut == list(range(0, in_flight.offset, CHUNK)), "a chunk was sent again"
    assert proxy.upstream < total + CHUNK + 2 * MiB, f"{proxy.upstream - total} bytes too many"
    assert unfinished_in_storage(request, storage) == []

    # 6. The zip holds every byte.
    saved = download(page, re.compile(r"^Save\b"), timeout=60_000)
    with zipfile.ZipFile(saved.path()) as archive:
        assert sorted(archive.namelist()) == sorted(
            ["message.txt", *hashes, "receipt.json", "receipt.txt"]  # + the signed receipt
        )
        for name, digest in hashes.items():
            with archive.open(name) as member:
                assert sha256_of(member.read) == digest, f"{name} differs in the zip"


def test_reloading_mid_upload_continues_from_the_servers_offset(
    big_server: PortalServer, open_page, sign_in, tmp_path: Path
) -> None:
    page = open_page(big_server.url)
    address = sign_in(page, "big.reload")
    path = random_file(tmp_path / "Pöytäkirjat 2026.bin", 72 * MiB + 5)
    size = path.stat().st_size
    network = Network(page)
    network.throttle(12 * MiB)
    log = UploadLog(page)
    page.get_by_label("Attachments", exact=True).set_input_files([path])
    upload = wait_until(page, lambda: log.announced.get(path.name), "the announcement")["id"]
    wait_until(page, lambda: len(log.accepted(upload)) >= 2, "two chunks to arrive")

    # 1. Reloaded mid-upload: the page lists the file as not uploaded completely.
    page.reload()
    unfinished = page.locator("#kept-attachments [data-unfinished]")
    expect(unfinished.get_by_role("heading")).to_have_text("Files not uploaded completely")
    expect(unfinished).to_contain_text(path.name)
    expect(unfinished).to_contain_text(re.compile(r"MB of 72\.0\sMB"))
    # What the uploader matches a chosen file by (so its size is not counted twice against the
    # room left): its name and size, as the server keeps only a keyed hash of its fingerprint.
    item = unfinished.locator(f"li[data-upload-id='{upload}']")
    expect(item).to_have_attribute("data-name", path.name)
    expect(item).to_have_attribute("data-size", str(size))
    rows = big_server.sql(
        "SELECT upload.received FROM upload JOIN message ON message.id = upload.message_id "
        "JOIN sender ON sender.id = message.sender_id WHERE sender.email = ?",
        (address.lower(),),
    )
    assert len(rows) == 1
    received = rows[0][0]
    assert received >= 2 * CHUNK and received % CHUNK == 0
    check_this_page(page, "the compose page with an unfinished upload", "big-unfinished")
    check_page_in(
        page, "/compose", "fi", "the compose page with an unfinished upload", "big-unfinished"
    )

    # 2. The same file chosen again continues where the server has it.
    before = len(log.puts)
    network.throttle(4 * MiB)
    page.get_by_label("Liitteet", exact=True).set_input_files([path])
    wait_until(page, lambda: len(log.puts) > before, "a chunk after the reload")
    assert log.announced[path.name]["id"] == upload
    assert log.puts[before].upload == upload
    assert log.puts[before].offset == received > 0, "the upload started over"
    expect(unfinished).to_be_hidden()  # it is the one uploading now, shown once
    bar = page.get_by_role("progressbar", name=f"Ladataan tiedostoa {path.name}", exact=True)
    expect(bar).to_be_visible()
    assert float(bar.evaluate("p => p.value")) >= received
    check_this_page(page, "the compose page while uploading", "big-uploading")

    network.throttle()
    kept = page.locator("#kept-attachments li[data-attachment-id]")
    expect(kept).to_have_count(1, timeout=30_000)
    expect(kept).to_contain_text(path.name)
    expect(kept).to_contain_text(file_sha256(path))
    assert all(put.offset >= received for put in log.puts[before:])
    assert log.accepted(upload) == list(range(0, size, CHUNK))


def test_files_can_be_removed_while_uploading_and_when_uploaded(
    big_server: PortalServer, open_page, sign_in, tmp_path: Path
) -> None:
    page = open_page(big_server.url)
    address = sign_in(page, "big.remove")
    first = random_file(tmp_path / "väärä.bin", 24 * MiB)
    second = random_file(tmp_path / "oikea.bin", 12 * MiB + 1)
    network = Network(page)
    network.throttle(8 * MiB)
    log = UploadLog(page)
    deletes: list[int] = []
    page.on(
        "response",
        lambda r: r.request.method == "DELETE" and deletes.append(r.status),
    )
    page.get_by_label("Attachments", exact=True).set_input_files([first, second])
    wait_until(page, lambda: progress_value(page, f"Uploading {first.name}") > 0, "progress")

    # 1. Removed while uploading: the server throws it away; focus goes to the next file.
    page.get_by_role("button", name=f"Remove {first.name}", exact=True).click()
    wait_until(page, lambda: deletes == [204], "the upload to be deleted")
    expect(page.locator("#uploads li").filter(has_text=first.name)).to_have_count(0)
    expect(page.get_by_role("button", name=f"Remove {second.name}", exact=True)).to_be_focused()
    expect(page.locator("#uploads-status")).to_contain_text(f"{first.name} was removed.")
    network.throttle()
    kept = page.locator("#kept-attachments li[data-attachment-id]")
    expect(kept).to_have_count(1)
    expect(kept).to_contain_text(second.name)
    expect(page.locator("#uploads-status")).to_contain_text("All files have been uploaded.")
    expect(page.locator("#uploads")).to_be_hidden()
    uploads = big_server.sql(
        "SELECT COUNT(*) FROM upload JOIN message ON message.id = upload.message_id "
        "JOIN sender ON sender.id = message.sender_id WHERE sender.email = ?",
        (address.lower(),),
    )
    assert uploads == [(0,)]
    tmp = big_server.data_dir / "files" / "tmp"
    assert not tmp.exists() or not any(tmp.iterdir()), "the removed upload left its part"
    assert log.announced[second.name]["offset"] == 0

    # 2. Removed when uploaded: from the list of attached files.
    room = page.locator("#kept-attachments").get_attribute("data-remaining")
    kept.get_by_role("button", name=f"Remove {second.name}", exact=True).click()
    expect(kept).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/compose$"))  # a reload shows the same page
    assert (
        int(page.locator("#kept-attachments").get_attribute("data-remaining") or 0)
        == int(room or 0) + second.stat().st_size
    )

    # 3. More than there is room for: refused in the browser, nothing is announced.
    huge = tmp_path / "liian-iso.bin"
    with huge.open("wb") as fh:
        fh.truncate(BIG_LIMIT + 1)  # sparse: the browser only looks at the size
    before = len(log.announced)
    page.get_by_label("Attachments", exact=True).set_input_files([huge])
    expect(page.locator("#attachments-too-large")).to_contain_text(
        "The chosen files are too large. There is room for at most 450 MB of attachments."
    )
    page.wait_for_timeout(300)
    assert len(log.announced) == before
    expect(page.locator("#uploads")).to_be_hidden()
    check_accessible(page, "the compose page refusing a file too large")
    save_screenshot(page, "big-too-large-en")
