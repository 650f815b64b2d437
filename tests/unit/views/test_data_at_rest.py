"""Nothing confidential lies in the clear, after a whole flow: a message with a subject, text,
signature and two files (one with the form, one in chunks), to a recipient who verifies with a
PIN by SMS, opened and answered with a reply of its own.

The raw bytes are searched past the portal's code: every file of the data directory (the
SQLite database, its WAL and shared memory, the stored objects), every object in the S3
bucket, and every column of every row of every table as the database returns it (so the test
holds on PostgreSQL too). Real transports are used (SMTP on loopback, the HTTP SMS gateway on
loopback), so no development mailbox keeps copies of the mails in the data directory.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tortoise import Tortoise

from portal.testing import builtin_plugins, e164, links_in

from ..helpers import (
    all_delivered,
    csrf_of,
    eventually,
    multipart,
    opened,
    page_text,
    post_compose,
    press_open,
    sign_in_delivered,
)
from .test_files_at_rest import upload_in_chunks

SENDER = "liisa@example.com"
RECIPIENT = "ville@valtori.fi"
NUMBER = "0401239876"
PHONE = e164(NUMBER)
MARKERS = {
    "subject": "SUBJECT-MARKER-7d1f",
    "body": "BODY-MARKER-4c2a",
    "signature": "SIGNATURE-MARKER-9e0b",
    "form file name": "FORMNAME-MARKER-1a5c",
    "chunked file name": "CHUNKNAME-MARKER-3f8d",
    "form file": "FORMFILE-MARKER-6b2e",
    "chunked file": "CHUNKFILE-MARKER-8c4f",
    "reply": "REPLY-MARKER-2d7a",
}
SECRETS = {
    **MARKERS,
    "phone (E.164)": PHONE,
    "phone (as typed)": NUMBER,
    "phone (digits)": PHONE[1:],
}


@pytest.fixture(params=["local", "s3"])
def portal_config(request, portal_config, smtp_server, sms_gateway):
    config = {
        **portal_config,
        "mail": "smtp",
        "sms": "http",
        "mail_from": "sinetti@valtori.fi",
        "plugin_options": {
            "SMTP_HOST": smtp_server.host,
            "SMTP_PORT": str(smtp_server.port),
            "SMS_HTTP_URL": sms_gateway.url,
            "SMS_HTTP_TOKEN": sms_gateway.token,
        },
    }
    if config["database_url"].startswith("sqlite://"):  # the database file in the data dir
        config["database_url"] = f"sqlite://{Path(config['data_dir']) / 'sinetti.sqlite3'}"
        Path(config["data_dir"]).mkdir(parents=True, exist_ok=True)
    if request.param == "s3":
        s3 = request.getfixturevalue("s3_server")
        config.update(s3.portal_config(s3.create_bucket(), prefix="sinetti/"))
    return config


@pytest.fixture
def portal_plugins():
    return builtin_plugins()


def mailed_texts(smtp_server) -> list[str]:
    return [mail.text() for mail in smtp_server.messages]


async def newest_mailed_link(smtp_server, address: str, kind: str) -> str:
    async def find() -> str | None:
        for mail in reversed(smtp_server.to(address)):
            for link in links_in(mail.text()):
                if f"/{kind}/" in link:
                    return urlsplit(link).path
        return None

    found = await eventually(find, timeout=30)
    assert found, f"no /{kind}/ link was mailed to {address}"
    return str(found)


async def run_the_whole_flow(portal_app, client, smtp_server, sms_gateway) -> None:
    """Send, verify with the PIN, open, download both files and the zip, and reply."""
    await sign_in_delivered(client, SENDER, lambda: mailed_texts(smtp_server))
    csrf = await csrf_of(client, "/compose?lang=en")
    chunked_name = f"{MARKERS['chunked file name']}.txt"
    await upload_in_chunks(client, csrf, chunked_name, MARKERS["chunked file"].encode() * 500)
    fields = {
        "action": "send",
        "recipients": f"{RECIPIENT}.{NUMBER}.sec",
        "subject": MARKERS["subject"],
        "body": MARKERS["body"],
        "signature": MARKERS["signature"],
    }
    form_file = ("attachments", f"{MARKERS['form file name']}.txt", MARKERS["form file"].encode())
    response = await post_compose(client, fields, [form_file])
    assert response.status_code == 303, await page_text(response)

    reader = portal_app.test_client()
    link = await newest_mailed_link(smtp_server, RECIPIENT, "m")
    earlier = len(sms_gateway.to(NUMBER))  # the gateway serves the whole test session
    assert (await press_open(reader, link)).status_code == 303
    csrf = await csrf_of(reader, f"{link}/code?lang=en")

    async def delivered() -> bool:
        return len(sms_gateway.to(NUMBER)) > earlier

    assert await eventually(delivered, timeout=30), "no PIN was sent"
    answer = await reader.post(
        f"{link}/code", form={"code": sms_gateway.pin(NUMBER), "csrf_token": csrf}
    )
    assert answer.status_code == 303, await page_text(answer)
    message = await reader.get(f"{link}?lang=en")
    shown = await page_text(message)
    for name in ("subject", "body", "signature", "form file name", "chunked file name"):
        assert MARKERS[name] in shown, shown[shown.find("file-list") - 200 :][:1500]
    zipped = await reader.get(f"{link}/zip")
    assert zipped.status_code == 200
    await zipped.get_data()

    csrf = await csrf_of(reader, f"{link}/reply?lang=en")
    fields = [("csrf_token", csrf), ("action", "send"), ("body", MARKERS["reply"])]
    body, content_type = multipart(fields, [])
    replied = await reader.post(f"{link}/reply", data=body, headers={"Content-Type": content_type})
    assert replied.status_code == 303, await page_text(replied)
    await all_delivered()


def raw_files(config: dict) -> dict[str, bytes]:
    return {
        str(path): path.read_bytes()
        for path in Path(config["data_dir"]).rglob("*")
        if path.is_file()
    }


def bucket_objects(config: dict, s3_server) -> dict[str, bytes]:
    s3, bucket = s3_server.client(), config["s3_bucket"]
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        f"s3://{bucket}/{item['Key']}": s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for item in listed
    }


async def database_rows() -> dict[str, bytes]:
    """Every row of every table, each column as text, as the database gives it back."""
    connection = Tortoise.get_connection("default")
    if connection.capabilities.dialect == "sqlite":
        tables = [
            row["name"]
            for row in await connection.execute_query_dict(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        ]
    else:
        tables = [
            row["tablename"]
            for row in await connection.execute_query_dict(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        ]
    dumped = {}
    for table in tables:
        rows = await connection.execute_query_dict(f'SELECT * FROM "{table}"')
        dumped[f"table {table}"] = repr(rows).encode("utf-8")
    return dumped


def holding(places: dict[str, bytes]) -> dict[str, list[str]]:
    """Which secrets lie where: place → the names of the secrets found in it."""
    found: dict[str, list[str]] = {}
    for place, data in places.items():
        names = [
            name
            for name, secret in SECRETS.items()
            if secret.encode("utf-8") in data or secret.encode("utf-16-le") in data
        ]
        if names:
            found[place] = names
    return found


async def test_no_subject_text_file_name_file_or_phone_number_lies_in_the_clear(
    portal_app, client, portal_config, smtp_server, sms_gateway, request
):
    await run_the_whole_flow(portal_app, client, smtp_server, sms_gateway)

    places = {**raw_files(portal_config), **await database_rows()}
    if portal_config.get("storage") == "s3":
        objects = bucket_objects(portal_config, request.getfixturevalue("s3_server"))
        assert len(objects) == 2
        places.update(objects)
    else:
        assert len([p for p in places if "/files/" in p or "/objects/" in p]) >= 2

    assert holding(places) == {}


async def test_the_search_finds_what_is_stored_in_the_clear(portal_app, client, portal_config):
    """The check above could pass by looking in the wrong places: a value stored unsealed on
    purpose (an e-mail address, which is kept in the clear) is found in the database file and
    in the rows."""
    from portal.models import Sender

    await Sender.create(email=f"{MARKERS['subject'].lower()}@example.fi")
    places = {**raw_files(portal_config), **await database_rows()}
    wanted = MARKERS["subject"].lower().encode()
    assert [place for place, data in places.items() if wanted in data and "table" in place]
    if portal_config["database_url"].startswith("sqlite://"):
        in_files = [place for place, data in places.items() if wanted in data]
        assert any("sinetti.sqlite3" in place for place in in_files)


async def test_an_opened_row_shows_what_was_written(portal_app, client, smtp_server, sms_gateway):
    from portal.models import Attachment, Message, Recipient

    await run_the_whole_flow(portal_app, client, smtp_server, sms_gateway)

    message = await Message.get(subject__not="", reply_to_id__isnull=True)
    recipient = await Recipient.get(message_id=message.id)
    names = sorted(a.filename for a in await opened(client, *await Attachment.all()))
    await opened(client, message, recipient)
    assert (message.subject, message.body, message.signature) == (
        MARKERS["subject"],
        MARKERS["body"],
        MARKERS["signature"],
    )
    assert recipient.phone == PHONE
    assert names == sorted(
        [f"{MARKERS['chunked file name']}.txt", f"{MARKERS['form file name']}.txt"]
    )
