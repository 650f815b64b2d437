"""The chunked upload protocol of the compose page: offsets decided by the server, duplicate
and out-of-order chunks, the limit while streaming, resume after a reload or a restart,
removal, cleanup of abandoned uploads, and sending only once every file is complete."""

from __future__ import annotations

import hashlib
import os
import zlib
from datetime import timedelta

import pytest

from portal.models import Attachment, Message, Upload
from portal.services import chunked
from portal.services.chunked import CHUNK_SIZE

from ..helpers import (
    attachment_bytes,
    csrf_of,
    opened,
    page_text,
    post_compose,
    row_counts,
    sign_in_with,
    stored_files,
)

SENDER = "liisa@example.com"
DATA = os.urandom(2 * CHUNK_SIZE + 12345)  # two whole chunks and a short last one
SIZE = len(DATA)


@pytest.fixture
def portal_config(portal_config):
    return {**portal_config, "max_attachments_bytes": 3 * CHUNK_SIZE}


@pytest.fixture
async def csrf(client, sign_in) -> str:
    await sign_in(SENDER)
    return await csrf_of(client, "/compose?lang=en")


async def begin(client, csrf, size=SIZE, name="iso raportti.pdf", fingerprint="a|1"):
    return await client.post(
        "/compose/uploads",
        json={
            "filename": name,
            "size": size,
            "type": "application/pdf",
            "fingerprint": fingerprint,
        },
        headers={"X-CSRF-Token": csrf},
    )


async def put(client, csrf, upload_id, offset, data=None):
    body = DATA[offset : offset + CHUNK_SIZE] if data is None else data
    return await client.put(
        f"/compose/uploads/{upload_id}",
        data=body,
        headers={"X-CSRF-Token": csrf, "Upload-Offset": str(offset)},
    )


async def upload_all(client, csrf) -> dict:
    state = await (await begin(client, csrf)).get_json()
    offset = 0
    while True:
        response = await put(client, csrf, state["id"], offset)
        assert response.status_code == 200, await response.get_json()
        answer = await response.get_json()
        if answer["complete"]:
            return answer
        offset = answer["offset"]


async def test_a_file_sent_in_chunks_becomes_an_attachment_with_its_checksums(
    portal_app, client, csrf, data_dir
):
    answer = await upload_all(client, csrf)

    attachment = await opened(client, await Attachment.get(id=answer["attachment"]["id"]))
    assert attachment.size == len(DATA)
    assert attachment.sha256 == hashlib.sha256(DATA).hexdigest() == answer["attachment"]["sha256"]
    assert attachment.crc32 == zlib.crc32(DATA)
    assert attachment.filename == "iso raportti.pdf"
    assert await Upload.all().count() == 0
    (stored,) = stored_files(data_dir)
    assert DATA[:64] not in stored.read_bytes()  # sealed at rest
    assert await attachment_bytes(portal_app.app, attachment) == DATA
    assert "iso raportti.pdf" in await page_text(await client.get("/compose"))


async def test_announcing_makes_a_draft_and_answers_where_to_start(client, csrf):
    response = await begin(client, csrf)

    assert response.status_code == 201
    state = await response.get_json()
    assert (state["offset"], state["size"], state["chunk_size"]) == (0, len(DATA), CHUNK_SIZE)
    assert state["complete"] is False
    assert await Message.filter(status="draft").count() == 1


async def test_a_chunk_sent_twice_is_refused_with_the_servers_offset(client, csrf):
    state = await (await begin(client, csrf)).get_json()
    assert (await put(client, csrf, state["id"], 0)).status_code == 200

    again = await put(client, csrf, state["id"], 0)

    assert again.status_code == 409
    assert (await again.get_json())["offset"] == CHUNK_SIZE
    assert (await Upload.get(id=state["id"])).received == CHUNK_SIZE


async def test_a_chunk_out_of_order_is_refused_and_nothing_is_stored_for_it(client, csrf):
    state = await (await begin(client, csrf)).get_json()

    ahead = await put(client, csrf, state["id"], CHUNK_SIZE)

    assert ahead.status_code == 409
    assert (await ahead.get_json())["offset"] == 0
    assert (await Upload.get(id=state["id"])).received == 0


async def test_the_server_says_where_an_upload_stands(client, csrf):
    state = await (await begin(client, csrf)).get_json()
    await put(client, csrf, state["id"], 0)

    status = await (await client.get(f"/compose/uploads/{state['id']}")).get_json()

    assert status["offset"] == CHUNK_SIZE and status["complete"] is False


async def test_a_chunk_longer_than_announced_is_refused_with_413(client, csrf):
    state = await (await begin(client, csrf, size=100)).get_json()

    response = await put(client, csrf, state["id"], 0, b"x" * 101)

    assert response.status_code == 413
    assert "at most" in (await response.get_json())["error"]
    assert (await Upload.get(id=state["id"])).received == 0


async def test_a_short_chunk_is_not_counted_and_can_be_sent_again(client, csrf):
    state = await (await begin(client, csrf)).get_json()

    short = await put(client, csrf, state["id"], 0, DATA[:1000])

    assert short.status_code == 400
    assert (await short.get_json())["offset"] == 0
    assert (await put(client, csrf, state["id"], 0)).status_code == 200


async def test_a_file_larger_than_the_room_left_is_refused_before_any_byte(client, csrf):
    response = await begin(client, csrf, size=3 * CHUNK_SIZE + 1)

    assert response.status_code == 413
    assert "at most 24\xa0MB" in (await response.get_json())["error"]
    assert await Upload.all().count() == 0


async def test_unfinished_uploads_count_against_the_limit(client, csrf):
    assert (await begin(client, csrf, size=2 * CHUNK_SIZE, fingerprint="a")).status_code == 201

    second = await begin(client, csrf, size=CHUNK_SIZE + 1, fingerprint="b")

    assert second.status_code == 413


async def test_announcing_the_same_file_again_continues_its_upload(client, csrf):
    first = await (await begin(client, csrf)).get_json()
    await put(client, csrf, first["id"], 0)

    again = await (await begin(client, csrf)).get_json()

    assert again["id"] == first["id"]
    assert again["offset"] == CHUNK_SIZE


async def test_an_upload_continued_by_another_process_still_gets_the_right_sha256(client, csrf):
    state = await (await begin(client, csrf)).get_json()
    await put(client, csrf, state["id"], 0)
    client.app.extensions["sinetti"].upload_hashes.clear()  # what another worker has in memory

    await put(client, csrf, state["id"], CHUNK_SIZE)
    final = await (await put(client, csrf, state["id"], 2 * CHUNK_SIZE)).get_json()

    assert final["attachment"]["sha256"] == hashlib.sha256(DATA).hexdigest()


async def test_a_chunk_without_the_csrf_header_is_refused(client, csrf):
    state = await (await begin(client, csrf)).get_json()

    response = await client.put(
        f"/compose/uploads/{state['id']}", data=DATA[:CHUNK_SIZE], headers={"Upload-Offset": "0"}
    )

    assert response.status_code == 400
    assert (await Upload.get(id=state["id"])).received == 0


async def test_another_sender_cannot_touch_an_upload(portal_app, client, csrf):
    state = await (await begin(client, csrf)).get_json()
    other = portal_app.test_client()
    await sign_in_with(other, "other@example.com")
    other_csrf = await csrf_of(other)

    assert (await other.get(f"/compose/uploads/{state['id']}")).status_code == 404
    assert (await put(other, other_csrf, state["id"], 0)).status_code == 404
    deleted = await other.delete(
        f"/compose/uploads/{state['id']}", headers={"X-CSRF-Token": other_csrf}
    )
    assert deleted.status_code == 204
    assert await Upload.filter(id=state["id"]).exists()


async def test_removing_an_upload_throws_away_its_stored_parts(client, csrf, data_dir):
    state = await (await begin(client, csrf)).get_json()
    await put(client, csrf, state["id"], 0)
    assert stored_files(data_dir)

    response = await client.delete(
        f"/compose/uploads/{state['id']}", headers={"X-CSRF-Token": csrf}
    )

    assert response.status_code == 204
    assert await Upload.all().count() == 0
    assert stored_files(data_dir) == []


async def test_an_unfinished_upload_is_listed_and_removable_without_javascript(client, csrf):
    state = await (await begin(client, csrf)).get_json()
    await put(client, csrf, state["id"], 0)

    html = await page_text(await client.get("/compose?lang=en"))
    assert "Files not uploaded completely" in html and "iso raportti.pdf" in html
    response = await client.post(
        f"/compose/uploads/{state['id']}/remove", form={"csrf_token": csrf}
    )

    assert response.status_code == 303
    assert await Upload.all().count() == 0


async def test_send_is_refused_while_a_file_is_still_uploading(client, csrf):
    state = await (await begin(client, csrf)).get_json()
    await put(client, csrf, state["id"], 0)

    response = await post_compose(
        client, {"recipients": "ville@valtori.fi", "subject": "S", "action": "send"}, csrf=csrf
    )

    assert response.status_code == 400
    assert "not been uploaded completely" in await page_text(response)
    assert await Message.filter(status="sent").count() == 0


async def test_send_after_the_upload_completed_sends_the_file(client, csrf):
    await upload_all(client, csrf)

    response = await post_compose(
        client, {"recipients": "ville@valtori.fi", "subject": "S", "action": "send"}, csrf=csrf
    )

    assert response.status_code == 303
    message = await Message.get(status="sent").prefetch_related("attachments")
    assert [a.size for a in message.attachments] == [len(DATA)]


async def test_cancel_throws_away_unfinished_uploads(client, csrf, data_dir):
    state = await (await begin(client, csrf)).get_json()
    await put(client, csrf, state["id"], 0)

    await client.post("/compose/cancel", form={"csrf_token": csrf})

    assert (await row_counts())["Upload"] == 0
    assert stored_files(data_dir) == []


async def test_uploads_abandoned_for_a_day_are_cleaned_up(portal_app, client, csrf, data_dir):
    old = await (await begin(client, csrf, fingerprint="old")).get_json()
    await put(client, csrf, old["id"], 0)
    recent = await (await begin(client, csrf, size=10, fingerprint="recent")).get_json()
    old_upload = await Upload.get(id=old["id"])
    await Upload.filter(id=old["id"]).update(
        updated_at=old_upload.updated_at - timedelta(hours=24, minutes=1)
    )
    storage = portal_app.app.extensions["sinetti"].providers.storage

    async with portal_app.app.app_context():  # services run in the app's context
        cleaned = await chunked.clean_up_abandoned(storage, hours=24)

    assert cleaned == 1
    assert [str(u.id) for u in await Upload.all()] == [recent["id"]]
    assert not [path for path in stored_files(data_dir) if old_upload.storage_key in path.name]


async def test_a_browser_that_missed_the_last_answer_learns_what_the_upload_became(client, csrf):
    answer = await upload_all(client, csrf)
    upload_id = (await Attachment.get(id=answer["attachment"]["id"])).upload_id

    status = await client.get(f"/compose/uploads/{upload_id}")

    assert status.status_code == 200
    state = await status.get_json()
    assert state["complete"] is True
    assert state["attachment"]["id"] == answer["attachment"]["id"]
