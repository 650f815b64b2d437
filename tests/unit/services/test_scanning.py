"""Malware scanning before anyone is notified, with a real clamd on loopback (Debian's
clamav-daemon, started by the tests with a signature database they write): a sent message
waits in "checking" with its recipients' notifications held; clean files release them; the
EICAR test file or our own test signature stops the message (the sender is told which file
and why, page and e-mail; the recipients are never told; the file is deleted); clamd away
makes the message wait, visibly, and go through once it is back; only one process records a
message's outcome."""

from __future__ import annotations

import asyncio
import html
import os
from datetime import timedelta

import pytest

from portal.models import (
    Attachment,
    AuditEvent,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxStatus,
    ScanState,
)
from portal.services import scanning
from portal.testing import EICAR, EICAR_SIGNATURE, MARKER_SIGNATURE, TEST_MALWARE_MARKER

from ..helpers import (
    csrf_of,
    eventually,
    mail_content,
    page_text,
    post_compose,
    row_where,
    scan_settled,
    send_message,
    stored_files,
)

SENDER = "liisa@example.com"
RECIPIENT = "ville@valtori.fi"
CLEAN = ("attachments", "hakemus.pdf", b"%PDF-1.7 " + os.urandom(300_000))


@pytest.fixture
def portal_config(portal_config, clamd_server):
    return {**portal_config, **clamd_server.portal_config()}


@pytest.fixture
def quick_retries(monkeypatch):
    """A failed attempt is tried again after a second, not half a minute."""
    monkeypatch.setattr(scanning, "FIRST_PAUSE", timedelta(seconds=1))


async def sent(client, sign_in, files) -> Message:
    await sign_in(SENDER)
    await send_message(client, {"recipients": RECIPIENT, "subject": "Hakemus"}, files)
    return await Message.get(status=MessageStatus.SENT)


async def state_of(message: Message) -> ScanState | None:
    return (await Message.get(id=message.id)).scan_state


async def settled(message: Message) -> ScanState:
    return await scan_settled(message.id)


async def to_recipient() -> list[OutboxItem]:
    return list(await OutboxItem.filter(to_address=RECIPIENT))


async def test_a_clean_message_waits_held_then_its_recipients_are_notified(
    client, sign_in, clamd_server
):
    clamd_server.pause()  # a slow scanner: the message is seen waiting
    try:
        message = await sent(client, sign_in, [CLEAN])

        assert await state_of(message) == ScanState.CHECKING
        [held] = await to_recipient()
        assert held.status == OutboxStatus.HELD
        page = html.unescape(await page_text(await client.get(f"/sent/{message.id}?lang=en")))
        assert "The attachments are being checked for malware." in page
        listed = html.unescape(await page_text(await client.get("/sent?lang=en")))
        assert "Waiting for the malware check" in listed
    finally:
        clamd_server.resume()

    assert await settled(message) == ScanState.CLEAN
    [released] = await to_recipient()
    assert released.status in (OutboxStatus.PENDING, OutboxStatus.SENT)
    [event] = await AuditEvent.filter(event="scanned", message_id=message.id)
    assert event.detail["released"] == 1


@pytest.mark.parametrize(
    ("content", "signature"),
    [
        (EICAR, EICAR_SIGNATURE),
        # our own signature, deep in a file of several chunks and segments
        (os.urandom(1_500_000) + TEST_MALWARE_MARKER + os.urandom(700_000), MARKER_SIGNATURE),
    ],
    ids=["eicar", "custom-signature"],
)
async def test_malware_stops_the_message_and_only_the_sender_is_told(
    portal_app, client, sign_in, data_dir, content, signature
):
    message = await sent(client, sign_in, [CLEAN, ("attachments", "lasku.doc", content)])

    assert await settled(message) == ScanState.INFECTED
    bad = await row_where(client, Attachment, message_id=message.id, filename="lasku.doc")
    good = await row_where(client, Attachment, message_id=message.id, filename="hakemus.pdf")
    assert (bad.malware, good.malware) == (signature, None)
    assert await to_recipient() == []  # the notification was withdrawn unsent
    stored = {path.name for path in stored_files(data_dir)}
    assert bad.storage_key not in stored and good.storage_key in stored
    to_sender = await OutboxItem.filter(to_address=SENDER, message_ref=message.id)
    texts = [(await mail_content(portal_app.app, item))[0] for item in to_sender]
    told = [text for text in texts if signature in text]  # not the receipt: it names no malware
    assert len(told) == 1 and "lasku.doc" in told[0] and "hakemus.pdf" not in told[0]
    page = html.unescape(await page_text(await client.get(f"/sent/{message.id}?lang=en")))
    assert "The message was not delivered: malware was found" in page
    assert f"lasku.doc: {signature}" in page and "hakemus.pdf:" not in page
    listed = html.unescape(await page_text(await client.get("/sent?lang=en")))
    assert "Not notified: malware was found" in listed
    zipped = await client.get(f"/sent/{message.id}/zip")
    assert zipped.status_code == 200  # the sender's record, without the deleted file
    assert await AuditEvent.filter(event="malware_found", message_id=message.id).count() == 1


async def test_with_clamd_away_the_message_waits_visibly_and_goes_once_it_is_back(
    client, sign_in, clamd_server, quick_retries
):
    clamd_server.stop()
    try:
        message = await sent(client, sign_in, [CLEAN])

        async def tried_twice() -> Message | None:
            fresh = await Message.get(id=message.id)
            return fresh if fresh.scan_attempts >= 2 else None

        waiting = await eventually(tried_twice, timeout=60)
        assert waiting.scan_state == ScanState.CHECKING
        assert "clamd" in waiting.scan_error
        assert [item.status for item in await to_recipient()] == [OutboxStatus.HELD]
        page = html.unescape(await page_text(await client.get(f"/sent/{message.id}?lang=en")))
        assert "The check is taking longer than usual." in page
    finally:
        clamd_server.start()

    assert await settled(message) == ScanState.CLEAN
    assert [item.status for item in await to_recipient()] != [OutboxStatus.HELD]


class TestFailOpen:
    @pytest.fixture
    def portal_config(self, portal_config):
        return {**portal_config, "scan_fail_open": "true"}

    async def test_a_message_goes_unscanned_when_clamd_is_away_and_it_is_recorded(
        self, client, sign_in, clamd_server
    ):
        clamd_server.stop()
        try:
            message = await sent(client, sign_in, [CLEAN])
            assert await settled(message) == ScanState.CLEAN
        finally:
            clamd_server.start()
        [event] = await AuditEvent.filter(event="scanned", message_id=message.id)
        assert event.detail["skipped"] is True


async def test_of_parallel_claims_on_a_waiting_message_exactly_one_wins(
    portal_app, client, sign_in, clamd_server
):
    clamd_server.pause()
    try:
        message = await sent(client, sign_in, [CLEAN])
        await Message.filter(id=message.id).update(scan_claimed_until=None)
        async with portal_app.app.app_context():
            won = await asyncio.gather(*(scanning.claim(message.id) for _ in range(20)))
    finally:
        clamd_server.resume()

    assert sum(won) == 1


async def test_operators_see_a_waiting_message_with_its_attempts_and_error(
    portal_app, client, sign_in, clamd_server, quick_retries
):
    clamd_server.stop()
    try:
        message = await sent(client, sign_in, [CLEAN])

        async def tried() -> bool:
            return (await Message.get(id=message.id)).scan_attempts >= 1

        assert await eventually(tried, timeout=60)
        async with portal_app.app.app_context():
            report = await scanning.report()
    finally:
        clamd_server.start()

    [waiting] = report["waiting"]
    assert waiting["message"] == str(message.id) and waiting["attempts"] >= 1
    assert "clamd" in waiting["last_error"]
    assert report["checking"] == 1


# -- files checked in the draft, before Send ----------------------------------------------


@pytest.fixture
def verdicts(portal_app, monkeypatch):
    """Every verdict clamd gives, in order (the real scanner, watched: not replaced)."""
    scanner = portal_app.app.extensions["sinetti"].providers.scanner
    given = []
    scan = scanner.scan

    async def watched(chunks):
        verdict = await scan(chunks)
        given.append(verdict)
        return verdict

    monkeypatch.setattr(scanner, "scan", watched)
    return given


async def attached_to_draft(client, sign_in, files) -> Attachment:
    await sign_in(SENDER)
    response = await post_compose(client, {"recipients": RECIPIENT, "action": "attach"}, files)
    assert response.status_code == 200, await page_text(response)
    return await Attachment.get(message__status=MessageStatus.DRAFT)


async def draft_sent(client, files) -> Message:
    """Send the draft of this session (signed in still), with ``files`` added."""
    await send_message(client, {"recipients": RECIPIENT, "subject": "Hakemus"}, files)
    return await Message.get(status=MessageStatus.SENT)


async def test_a_file_of_a_draft_is_checked_before_send_and_send_checks_only_the_rest(
    client, sign_in, verdicts
):
    early = await attached_to_draft(client, sign_in, [CLEAN])

    async def checked() -> Attachment | None:
        fresh = await Attachment.get(id=early.id)
        return fresh if fresh.scanned_at is not None else None

    assert await eventually(checked, timeout=60)
    assert [verdict.clean for verdict in verdicts] == [True]

    later = ("attachments", "liite.txt", b"added with Send " + os.urandom(1000))
    message = await draft_sent(client, [later])
    assert await settled(message) == ScanState.CLEAN
    assert [verdict.clean for verdict in verdicts] == [True, True]  # liite.txt only
    assert await Attachment.filter(message_id=message.id).count() == 2
    [released] = await to_recipient()
    assert released.status in (OutboxStatus.PENDING, OutboxStatus.SENT)


async def test_malware_found_in_a_draft_is_found_again_at_send_and_stops_the_message(
    client, sign_in, verdicts
):
    early = await attached_to_draft(client, sign_in, [("attachments", "lasku.doc", EICAR)])

    async def looked_at() -> bool:
        return len(verdicts) == 1

    assert await eventually(looked_at, timeout=60)
    assert not verdicts[0].clean
    assert (await Attachment.get(id=early.id)).scanned_at is None

    message = await draft_sent(client, [])
    assert await settled(message) == ScanState.INFECTED
    assert (await Attachment.get(id=early.id)).malware == EICAR_SIGNATURE
    assert await to_recipient() == []


async def test_a_file_already_sent_or_checked_is_not_checked_early_again(
    portal_app, client, sign_in, verdicts
):
    message = await sent(client, sign_in, [CLEAN])
    assert await settled(message) == ScanState.CLEAN
    [attachment] = await Attachment.filter(message_id=message.id)
    providers = portal_app.app.extensions["sinetti"].providers

    async with portal_app.app.app_context():
        checked = await scanning.check_early(providers.storage, providers.scanner, attachment.id)

    assert checked is False
    assert len(verdicts) == 1  # the check at Send only


async def test_a_file_uploaded_in_chunks_is_checked_once_it_is_complete(client, sign_in, verdicts):
    await sign_in(SENDER)
    headers = {"X-CSRF-Token": await csrf_of(client, "/compose?lang=en")}
    content = CLEAN[2]
    announced = await client.post(
        "/compose/uploads",
        json={"filename": "hakemus.pdf", "size": len(content), "fingerprint": "h|1"},
        headers=headers,
    )
    upload_id = (await announced.get_json())["id"]
    answer = await client.put(
        f"/compose/uploads/{upload_id}", data=content, headers={**headers, "Upload-Offset": "0"}
    )
    assert (await answer.get_json())["complete"] is True

    async def checked() -> Attachment | None:
        found = await Attachment.get(message__status=MessageStatus.DRAFT)
        return found if found.scanned_at is not None else None

    assert await eventually(checked, timeout=60)
    assert [verdict.clean for verdict in verdicts] == [True]


async def test_a_verdict_on_a_removed_file_never_marks_a_file_that_took_its_row(
    portal_app, client, sign_in, monkeypatch
):
    """SQLite gives a new row the id of the highest one deleted: a file removed from the
    draft while it was checked, and another uploaded at once, may share an id. The verdict
    on the first must not count for the second."""
    early = await attached_to_draft(client, sign_in, [CLEAN])
    await eventually(lambda: Attachment.filter(id=early.id, scanned_at__isnull=False).exists())
    await Attachment.filter(id=early.id).update(scanned_at=None)  # as if not yet checked
    providers = portal_app.app.extensions["sinetti"].providers
    scan = providers.scanner.scan

    async def meanwhile_replaced(chunks):
        verdict = await scan(chunks)
        await Attachment.filter(id=early.id).update(storage_key="another-file")
        return verdict

    monkeypatch.setattr(providers.scanner, "scan", meanwhile_replaced)
    async with portal_app.app.app_context():
        checked = await scanning.check_early(providers.storage, providers.scanner, early.id)

    assert checked is False
    assert (await Attachment.get(id=early.id)).scanned_at is None
