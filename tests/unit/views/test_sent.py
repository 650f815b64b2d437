"""The confirmation page and the zip download: contents, format and who may see them."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zipfile

import pytest

from portal.models import Message, MessageKey, MessageStatus
from portal.services import message_keys

from ..helpers import csrf_of, page_text, send_message, sign_in_with

SENDER = "liisa@example.com"
FILES = [
    ("attachments", "raportti.pdf", b"%PDF-1.7 first" + bytes(range(256)) * 100),
    ("attachments", "raportti.pdf", b"%PDF-1.7 second, same name"),
    ("attachments", "RAPORTTI.PDF", b"%PDF-1.7 third, same name in capitals"),
    ("attachments", "../../etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n"),
    ("attachments", 'a:b?"c|d.txt', b"reserved characters"),
    ("attachments", "Äöå résumé.txt", "ÄÖÅ".encode()),
    ("attachments", "message.txt", b"an attachment that shares the message text's name"),
    ("attachments", "tyhja.txt", b""),
]
EXPECTED_NAMES = [
    "message.txt",
    "raportti.pdf",
    "raportti (2).pdf",
    "RAPORTTI (3).PDF",
    "passwd",
    "a_b__c_d.txt",
    "Äöå résumé.txt",
    "message (2).txt",
    "tyhja.txt",
]
RECEIPT_NAMES = ["receipt.json", "receipt.txt"]  # the sender's zip ends with the signed receipt
FIELDS = {
    "recipients": "ville@valtori.fi, maija@example.fi.0400123456.sec",
    "subject": "Hakemus: liitteet",
    "body": "Hei,\n\nliitteenä hakemus ja raportit.",
    "signature": "Liisa Laine",
}


@pytest.fixture
async def sent(client, sign_in) -> str:
    """The confirmation path of a message sent by ``client`` (in English)."""
    await sign_in(SENDER)
    await client.get("/compose?lang=en")
    return await send_message(client, FIELDS, FILES)


@pytest.fixture
async def zip_bytes(client, sent) -> bytes:
    response = await client.get(sent + "/zip")
    assert response.status_code == 200
    return bytes(await response.get_data())


def extra_field_ids(extra: bytes) -> list[int]:
    ids, offset = [], 0
    while offset + 4 <= len(extra):
        header_id, size = struct.unpack_from("<HH", extra, offset)
        ids.append(header_id)
        offset += 4 + size
    return ids


async def test_zip_download_is_an_attachment_named_after_the_subject(client, sent):
    response = await client.get(sent + "/zip")

    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="Hakemus_ liitteet.zip"')
    assert "filename*=UTF-8''Hakemus_%20liitteet.zip" in disposition
    assert response.headers["Cache-Control"] == "no-store"


async def test_zip_holds_every_attachment_byte_identical_under_safe_unique_names(zip_bytes):
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == [*EXPECTED_NAMES, *RECEIPT_NAMES]
        for name, (_field, _filename, content) in zip(EXPECTED_NAMES[1:], FILES, strict=True):
            assert archive.read(name) == content


async def test_zip_message_text_has_the_headers_message_and_file_list(zip_bytes):
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        text = archive.read("message.txt").decode("utf-8")

    assert f"Sender: {SENDER}" in text
    assert "ville@valtori.fi" in text and "maija@example.fi" in text
    assert "Subject: Hakemus: liitteet" in text
    assert "Hei,\n\nliitteenä hakemus ja raportit." in text
    assert "Liisa Laine" in text
    assert "raportti.pdf" in text and "Äöå résumé.txt" in text
    assert "0400123456" not in text


async def test_zip_uses_utf8_names_and_no_zip64_for_a_small_archive(zip_bytes):
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        infos = archive.infolist()

    for info in infos:
        assert 0x0001 not in extra_field_ids(info.extra), f"zip64 extra field on {info.filename}"
        assert info.compress_type == zipfile.ZIP_STORED
    assert infos[EXPECTED_NAMES.index("Äöå résumé.txt")].flag_bits & 0x800
    assert b"PK\x06\x06" not in zip_bytes  # zip64 end of central directory record
    assert b"PK\x06\x07" not in zip_bytes  # zip64 end of central directory locator


async def test_zip_passes_unzip_t(zip_bytes, tmp_path):
    unzip = shutil.which("unzip")
    assert unzip, "install Debian's unzip (make browser installs it)"
    path = tmp_path / "message.zip"
    path.write_bytes(zip_bytes)

    result = subprocess.run([unzip, "-t", str(path)], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "No errors detected" in result.stdout
    assert f"testing: {EXPECTED_NAMES[2]}" in result.stdout


async def test_zip_is_read_whole_by_bsdtar(zip_bytes, tmp_path):
    bsdtar = shutil.which("bsdtar")
    assert bsdtar, "install Debian's libarchive-tools (make browser installs it)"
    path = tmp_path / "message.zip"
    path.write_bytes(zip_bytes)
    into = tmp_path / "out"
    into.mkdir()

    listed = subprocess.run([bsdtar, "-tf", str(path)], capture_output=True, text=True, check=False)
    extracted = subprocess.run(
        [bsdtar, "-xf", str(path), "-C", str(into)], capture_output=True, text=True, check=False
    )

    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [*EXPECTED_NAMES, *RECEIPT_NAMES]
    assert extracted.returncode == 0, extracted.stderr
    contents = {name: content for _field, name, content in FILES}
    assert (into / "Äöå résumé.txt").read_bytes() == contents["Äöå résumé.txt"]
    assert (into / "raportti.pdf").read_bytes() == FILES[0][2]


async def test_another_sender_can_never_see_the_confirmation_or_zip(portal_app, sent):
    other = portal_app.test_client()
    await sign_in_with(other, "someone@example.com")

    for path in (sent, sent + "/zip"):
        response = await other.get(path)
        assert response.status_code == 404
        assert b"PK\x03\x04" not in await response.get_data()
        assert "Hakemus" not in await page_text(response)


async def test_without_a_session_the_confirmation_and_zip_are_refused(portal_app, sent):
    stranger = portal_app.test_client()

    for path in (sent, sent + "/zip"):
        response = await stranger.get(path)
        assert response.status_code == 401
        assert "Hakemus" not in await page_text(response)


async def test_ending_the_session_closes_the_confirmation(client, sent):
    csrf = await csrf_of(client, sent)
    response = await client.post("/compose/cancel", form={"csrf_token": csrf})
    assert response.status_code == 200

    assert (await client.get(sent)).status_code == 401
    assert (await client.get(sent + "/zip")).status_code == 401


async def test_zip_text_is_in_the_senders_language(portal_app, client, sent):
    await client.get("/?lang=fi")

    data = bytes(await (await client.get(sent + "/zip")).get_data())

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        first = archive.namelist()[0]
    from portal.i18n import _, locale_context

    async with portal_app.app.app_context():  # the app's catalogs translate
        with locale_context("fi"):
            expected = _("message") + ".txt"
    assert expected != "message.txt"
    assert first == expected


async def test_a_message_purged_while_the_list_is_made_is_left_out_not_a_500(
    portal_app, client, sign_in
):
    await sign_in(SENDER)
    await send_message(client, {**FIELDS, "subject": "Jää listalle"})
    confirmation = await send_message(client, {**FIELDS, "subject": "Poistuu"})
    gone = await Message.get(id=confirmation.rsplit("/", 1)[1], status=MessageStatus.SENT)
    # What the purge leaves between the list's query and its opening: the key is gone (it
    # goes with the message), and this process no longer remembers it.
    await MessageKey.filter(message_id=gone.id).delete()
    async with portal_app.app.app_context():
        message_keys.forget(gone.id)

    response = await client.get("/sent?lang=en")

    assert response.status_code == 200
    text = await page_text(response)
    assert "Jää listalle" in text and "Poistuu" not in text
