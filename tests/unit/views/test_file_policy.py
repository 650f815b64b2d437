"""The file-type policy on the compose page: it says before any upload what is refused, and a
program or script is refused with the file's name and the reason in the user's language,
whether it comes with the form (no JavaScript) or in chunks (the uploader), by its name or by
its bytes; nothing of it is kept and the message typed so far stays."""

from __future__ import annotations

import html

import pytest

from portal.models import Attachment, Message, Upload

from ..helpers import csrf_of, page_text, post_compose, stored_files

SENDER = "liisa@example.com"
PROGRAM = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 600  # a Windows program's first bytes

REFUSED = {
    "fi": "ohjelmia ja komentosarjoja",
    "sv": "program och skript",
    "en": "programs and scripts",
}
HINT = {
    "fi": "Ohjelmia ja komentosarjoja (kuten .exe-, .bat- tai .js-tiedostoja) ei voi lähettää.",
    "sv": "Program och skript (till exempel .exe-, .bat- eller .js-filer) kan inte skickas.",
    "en": "Programs and scripts (such as .exe, .bat or .js files) cannot be sent.",
}


@pytest.fixture
async def signed_in(client, sign_in):
    await sign_in(SENDER)
    return client


@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
async def test_the_compose_page_says_what_is_refused_before_any_upload(signed_in, lang):
    page = html.unescape(await page_text(await signed_in.get(f"/compose?lang={lang}")))

    assert HINT[lang] in page
    assert 'id="attachments-hint"' in page  # the file field is described by it


@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
@pytest.mark.parametrize(
    ("name", "content"), [("asennus.exe", b"hello"), ("raportti.pdf", PROGRAM)]
)
async def test_a_program_sent_with_the_form_is_refused_by_name_or_bytes_and_the_text_kept(
    signed_in, data_dir, lang, name, content
):
    await signed_in.get(f"/compose?lang={lang}")

    response = await post_compose(
        signed_in,
        {"action": "send", "recipients": "ville@valtori.fi", "subject": "Hakemus", "body": "B"},
        [("attachments", "ok.txt", b"fine"), ("attachments", name, content)],
    )

    assert response.status_code == 422
    page = html.unescape(await page_text(response))
    assert name in page and REFUSED[lang] in page
    assert 'value="Hakemus"' in page  # what was typed stays
    assert not await Message.filter(status="sent").exists()
    assert await Attachment.all().count() == 0
    assert stored_files(data_dir) == []


async def announce(client, csrf: str, name: str, size: int):
    return await client.post(
        "/compose/uploads",
        json={"filename": name, "size": size, "type": "", "fingerprint": name},
        headers={"X-CSRF-Token": csrf},
    )


@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
async def test_a_program_announced_in_chunks_is_refused_before_a_byte_is_sent(signed_in, lang):
    csrf = await csrf_of(signed_in, f"/compose?lang={lang}")

    response = await announce(signed_in, csrf, "Setup.EXE", 1000)

    assert response.status_code == 422
    answer = await response.get_json()
    assert answer["reason"] == "file-type"
    assert "Setup.EXE" in answer["error"] and REFUSED[lang] in answer["error"]
    assert await Upload.all().count() == 0


async def test_a_program_named_as_a_document_is_refused_at_its_first_chunk(signed_in, data_dir):
    csrf = await csrf_of(signed_in, "/compose?lang=en")
    upload = await (await announce(signed_in, csrf, "raportti.pdf", len(PROGRAM))).get_json()

    response = await signed_in.put(
        f"/compose/uploads/{upload['id']}",
        data=PROGRAM,
        headers={"X-CSRF-Token": csrf, "Upload-Offset": "0"},
    )

    assert response.status_code == 422
    assert "“raportti.pdf”" in (await response.get_json())["error"]
    assert await Upload.all().count() == 0 and await Attachment.all().count() == 0
    assert stored_files(data_dir) == []


class TestAnAllowedList:
    @pytest.fixture
    def portal_config(self, portal_config):
        return {**portal_config, "allowed_file_types": "pdf, .docx"}

    async def test_the_page_names_the_accepted_types_and_others_are_refused(self, signed_in):
        page = html.unescape(await page_text(await signed_in.get("/compose?lang=en")))
        assert "You can send only these file types: .docx, .pdf." in page

        response = await post_compose(
            signed_in, {"action": "attach"}, [("attachments", "kuva.png", b"\x89PNG\r\n")]
        )

        assert response.status_code == 422
        text = html.unescape(await page_text(response))
        assert "“kuva.png” cannot be sent: this service accepts only these file types" in text
