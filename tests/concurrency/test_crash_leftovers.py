"""A crash leaves nothing behind for good, on both storage backends (local files, and S3 on
moto's server on loopback).

A real ``sinetti serve --workers 2`` holds live things: a sent message with files, a draft
with a file and an unfinished chunked upload. Then, while a big message is being sent (its
form body half received) and a burst of small sends is under way, the whole process group
is killed with SIGKILL. ``sinetti purge`` (with every server stopped, so it may sweep young
orphans at once) must then leave exactly what the database names: every byte of the crash
gone, every live file still whole (its SHA-256 as recorded).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from portal.testing import (
    MailCatcher,
    S3Server,
    SmsGatewayServer,
    new_address,
    new_recipient,
    running_portal_server,
    server_env,
)

from .conftest import WORKERS, server_database
from .helpers import Browser, Database, MiB, Site, attachments_opened

SINETTI = str(Path(sys.executable).with_name("sinetti"))
LIMIT = 64 * MiB
BIG = 40 * MiB  # over S3's 8 MiB part: the crash leaves a multipart upload, not a buffer
BURST = 10
SETTINGS = {
    "PORTAL_MAX_ATTACHMENTS_BYTES": str(LIMIT),
    "PORTAL_MAX_DRAFT_BYTES_PER_SENDER": str(8 * LIMIT),
    "PORTAL_OUTBOX_POLL_SECONDS": "1",
    "PORTAL_REGISTRATIONS_PER_IP_PER_HOUR": "1000",
}


@pytest.fixture(params=["local", "s3"])
def storage_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "local":
        yield {}
        return
    s3: S3Server = request.getfixturevalue("s3_server")
    bucket = s3.create_bucket()
    try:
        config = s3.portal_config(bucket, prefix="sinetti/")
        yield {f"PORTAL_{name.upper()}": value for name, value in config.items()}
    finally:
        s3.delete_bucket(bucket)


@pytest.fixture
def crashing_site(
    storage_env: dict[str, str],
    mail: MailCatcher,
    sms_gateway: SmsGatewayServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Site, dict[str, str]]]:
    """A server of its own (it is killed), and the environment ``sinetti purge`` runs with."""
    name = f"crash_{uuid.uuid4().hex[:6]}"
    with server_database(name) as database_url:
        env = {**SETTINGS, **storage_env}
        if database_url:
            env["PORTAL_DATABASE_URL"] = database_url
        with running_portal_server(
            mail, sms_gateway, tmp_path_factory, name, env, serve_args=("--workers", str(WORKERS))
        ) as server:
            port = int(server.url.rsplit(":", 1)[1])
            full_env = {**server_env(port, server.data_dir, mail, sms_gateway), **env}
            yield (
                Site(server, mail, sms_gateway, Database(database_url, server.database), env),
                (full_env),
            )


# -- what the storage holds, whatever the backend -------------------------------------------


def stored(site: Site, env: dict[str, str]) -> dict[str, bytes | None]:
    """Every key stored, finished (its bytes) or unfinished (None)."""
    if env.get("PORTAL_STORAGE") != "s3":
        found: dict[str, bytes | None] = {}
        for path in site.server.stored_files():
            if path.parent.name == "tmp":
                found[path.name.split(".")[0]] = None
            else:
                found[path.name] = path.read_bytes()
        return found
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=env["PORTAL_S3_ENDPOINT_URL"],
        region_name=env["PORTAL_S3_REGION"],
        aws_access_key_id=env["PORTAL_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=env["PORTAL_S3_SECRET_ACCESS_KEY"],
    )
    bucket, prefix = env["PORTAL_S3_BUCKET"], env["PORTAL_S3_PREFIX"]
    found = {}
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        found[item["Key"].removeprefix(prefix)] = body
    for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        found.setdefault(upload["Key"].removeprefix(prefix), None)
    return found


async def named_by_rows(site: Site) -> tuple[dict[str, str], set[str]]:
    """The attachments' keys with their recorded SHA-256, and the unfinished uploads' keys."""
    attachments = dict(await site.db.rows("SELECT storage_key, sha256 FROM attachment"))
    uploads = {key for (key,) in await site.db.rows("SELECT storage_key FROM upload")}
    return {str(k): str(v) for k, v in attachments.items()}, {str(k) for k in uploads}


# -- the flows ------------------------------------------------------------------------------


async def signed_in(site: Site) -> Browser:
    browser = site.browser()
    address = new_address("crash")
    answer = await browser.register(address)
    assert answer.status_code == 200, answer.text[:500]
    await browser.sign_in(await site.personal_link(address))
    return browser


async def live_things(site: Site) -> list[Browser]:
    """A sent message with two files; a draft with a file and an unfinished chunked upload."""
    sender = await signed_in(site)
    sent = await sender.compose(
        await sender.csrf("/compose"),
        new_recipient("live"),
        files=[("a.bin", os.urandom(300_000)), ("b.bin", os.urandom(9 * MiB))],
    )
    assert sent.status_code == 303, sent.text[:500]
    drafter = await signed_in(site)
    csrf = await drafter.csrf("/compose")
    attached = await drafter.compose(
        csrf, new_recipient("draft"), files=[("c.bin", os.urandom(200_000))], attach_only=True
    )
    assert attached.status_code == 200, attached.text[:500]
    announced = await drafter.announce(csrf, 20 * MiB)
    assert announced.status_code == 201, announced.text
    upload = announced.json()
    chunk = await drafter.put_chunk(csrf, upload["id"], 0, os.urandom(8 * MiB))
    assert chunk.status_code in (200, 204), chunk.text
    return [sender, drafter]


def multipart_send(csrf: str, recipient: str, size: int) -> tuple[bytes, bytes, str]:
    """The compose form with one file of ``size`` bytes and ``action=send``: the bytes before
    the file's, those after, and the content type."""
    boundary = uuid.uuid4().hex
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in [
            ("csrf_token", csrf),
            ("recipients", recipient),
            ("subject", "Big"),
            ("body", "Half of it arrives."),
            ("action", "send"),
        ]
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; '
        f'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    return head, f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def half_a_big_send(browser: Browser, stalled: asyncio.Event) -> None:
    """Send a ``BIG`` message whose body stops halfway (the request hangs until the kill)."""
    csrf = await browser.csrf("/compose")
    head, tail, content_type = multipart_send(csrf, new_recipient("big"), BIG)

    async def body() -> AsyncIterator[bytes]:
        yield head
        for _ in range(BIG // MiB // 2):
            yield os.urandom(MiB)
        stalled.set()
        await asyncio.Event().wait()  # never: the server dies first
        yield tail

    with contextlib.suppress(httpx.HTTPError):
        await browser.http.post(
            browser.compose_action,
            content=body(),
            headers={
                "Content-Type": content_type,
                "Content-Length": str(len(head) + BIG + len(tail)),
            },
        )


async def a_burst_of_sends(site: Site) -> None:
    senders = [await signed_in(site) for _ in range(2)]

    async def send(browser: Browser) -> None:
        with contextlib.suppress(httpx.HTTPError):
            csrf = await browser.csrf("/compose")
            await browser.compose(
                csrf, new_recipient("burst"), files=[("d.bin", os.urandom(3 * MiB))]
            )

    await asyncio.gather(*(send(senders[i % 2]) for i in range(BURST)))


def purge(env: dict[str, str], *args: str) -> dict[str, int]:
    done = subprocess.run(
        [SINETTI, "purge", "--json", "--orphans-older-than", "0", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


async def test_a_killed_server_leaves_nothing_after_purge_and_live_files_stay_whole(
    crashing_site: tuple[Site, dict[str, str]],
) -> None:
    site, env = crashing_site
    browsers = await live_things(site)
    live_before, uploads_before = await named_by_rows(site)
    assert len(live_before) == 3 and len(uploads_before) == 1

    big = await signed_in(site)
    browsers.append(big)
    stalled = asyncio.Event()
    sending = asyncio.create_task(half_a_big_send(big, stalled))
    await asyncio.wait_for(stalled.wait(), 120)
    burst = asyncio.create_task(a_burst_of_sends(site))
    await asyncio.sleep(1.0)  # some of the burst is stored, some is on its way
    os.killpg(site.server.pid, signal.SIGKILL)
    sending.cancel()  # its body waits for ever: the connection's end never reaches it
    await asyncio.gather(sending, burst, return_exceptions=True)
    for browser in browsers:
        await browser.http.aclose()

    live, uploads = await named_by_rows(site)
    left = stored(site, env)
    assert set(left) - set(live) - uploads, "the crash left nothing: the test proves nothing"

    due = purge(env, "--dry-run")
    purged = purge(env)

    assert purged["orphans"] == due["orphans"] >= 1
    after = stored(site, env)
    assert set(after) == set(live) | uploads  # exactly what rows name: nothing more, nothing less
    assert await attachments_opened(site.db, site.server.data_dir, after) == live
    assert set(live_before) <= set(live) and uploads_before <= uploads
    assert purge(env)["orphans"] == 0
