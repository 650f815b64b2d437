"""Drafts under parallel requests: the attachment budget of a draft (announced chunked uploads
and plain form posts), the sender's quota over all their unsent drafts, Send happening once,
and nothing reaching a message after Send.

Each test has a sender of its own. The server's limits: 5 MiB per message, 6 MiB for all the
unsent drafts of one sender.
"""

from __future__ import annotations

import asyncio
import os

import httpx

from portal.testing import new_recipient

from .helpers import (
    BURST,
    Browser,
    MiB,
    Site,
    at_once,
    audit_events,
    moment,
    no_server_errors,
    statuses,
)

LIMIT = 5 * MiB
QUOTA = 6 * MiB
SETTINGS = {
    "PORTAL_MAX_ATTACHMENTS_BYTES": str(LIMIT),
    "PORTAL_MAX_DRAFT_BYTES_PER_SENDER": str(QUOTA),
}
SETTLE = 3.0  # seconds for the outbox (polled every second) to send anything still queued


async def _sender_id(site: Site, address: str) -> int:
    return int(await site.db.value("SELECT id FROM sender WHERE email = ?", address.lower()))


async def _drafts(site: Site, address: str) -> list[str]:
    rows = await site.db.rows(
        "SELECT id FROM message WHERE sender_id = ? AND status = 'draft'",
        await _sender_id(site, address),
    )
    return [str(message_id) for (message_id,) in rows]


async def _reserved(site: Site, address: str) -> int:
    """Bytes of every unsent draft of the sender: attachments and announced uploads."""
    sender_id = await _sender_id(site, address)
    attached = await site.db.value(
        "SELECT coalesce(sum(a.size), 0) FROM attachment a JOIN message m ON m.id = a.message_id "
        "WHERE m.sender_id = ? AND m.status = 'draft'",
        sender_id,
    )
    announced = await site.db.value(
        "SELECT coalesce(sum(u.size), 0) FROM upload u JOIN message m ON m.id = u.message_id "
        "WHERE m.sender_id = ? AND m.status = 'draft'",
        sender_id,
    )
    return int(attached) + int(announced)


async def _start_draft(browser: Browser, csrf: str) -> None:
    """Save the form once (no file): the session now has its draft, which the burst shares."""
    saved = await browser.compose(csrf, new_recipient("draft"), attach_only=True)
    assert saved.status_code == 200, f"save: {saved.status_code}\n{saved.text[:800]}"


async def test_parallel_announcements_never_exceed_the_draft_budget(
    site: Site, sender: tuple[Browser, str, str]
) -> None:
    browser, address, _link = sender
    csrf = await browser.csrf("/compose")
    await _start_draft(browser, csrf)
    size = LIMIT // 5
    answers = await at_once(browser.announce(csrf, size, f"part-{i}.bin") for i in range(BURST))
    no_server_errors(answers)
    assert statuses(answers) == {201: 5, 413: BURST - 5}
    drafts = await _drafts(site, address)
    assert len(drafts) == 1, f"the burst went to {len(drafts)} drafts"
    announced = await site.db.value(
        "SELECT coalesce(sum(size), 0) FROM upload WHERE message_id = ?", drafts[0]
    )
    assert int(announced) == 5 * size <= LIMIT


async def test_parallel_form_uploads_never_exceed_the_draft_budget(
    site: Site, sender: tuple[Browser, str, str]
) -> None:
    browser, address, _link = sender
    csrf = await browser.csrf("/compose")
    await _start_draft(browser, csrf)
    size = LIMIT // 12  # 60 of them would be twelve times the budget
    recipient = new_recipient("form")
    answers = await at_once(
        browser.compose(
            csrf, recipient, files=[(f"form-{i}.bin", os.urandom(size))], attach_only=True
        )
        for i in range(BURST)
    )
    no_server_errors(answers)
    counted = statuses(answers)
    assert set(counted) <= {200, 413}, counted
    drafts = await _drafts(site, address)
    assert len(drafts) == 1, f"the burst went to {len(drafts)} drafts"
    attached = await site.db.rows("SELECT size FROM attachment WHERE message_id = ?", drafts[0])
    total = sum(int(s) for (s,) in attached)
    assert total <= LIMIT, f"{total} bytes attached to a draft of at most {LIMIT}"
    assert len(attached) == counted[200], "each accepted post attached its file, no other did"
    assert counted[200] >= 1


async def test_sender_quota_holds_across_parallel_drafts(
    site: Site, sender: tuple[Browser, str, str], browsers: list[Browser]
) -> None:
    _first, address, link = sender
    sessions = [site.browser() for _ in range(5)]
    browsers.extend(sessions)
    for session in sessions:
        await session.sign_in(link)
    tokens = [await session.csrf("/compose") for session in sessions]
    for session, token in zip(sessions, tokens, strict=True):
        await _start_draft(session, token)
    assert len(await _drafts(site, address)) == len(sessions)

    size = 1 * MiB  # each draft has room for 5, the sender for 6 in all
    answers = await at_once(
        sessions[i % len(sessions)].announce(tokens[i % len(sessions)], size, f"q-{i}.bin")
        for i in range(BURST)
    )
    no_server_errors(answers)
    assert statuses(answers) == {201: QUOTA // size, 413: BURST - QUOTA // size}
    assert await _reserved(site, address) <= QUOTA


async def test_parallel_sends_of_one_draft_make_exactly_one_message(
    site: Site, sender: tuple[Browser, str, str]
) -> None:
    browser, address, _link = sender
    csrf = await browser.csrf("/compose")
    recipient = new_recipient("once")
    saved = await browser.compose(
        csrf, recipient, files=[("note.txt", b"attached once")], attach_only=True
    )
    assert saved.status_code == 200
    answers = await at_once(browser.compose(csrf, recipient) for _ in range(BURST))
    no_server_errors(answers)
    counted = statuses(answers)
    sent = await site.db.rows(
        "SELECT id FROM message WHERE sender_id = ? AND status = 'sent'",
        await _sender_id(site, address),
    )
    assert counted[303] == 1, (
        f"answers to {BURST} sends of one draft: {counted}; {len(sent)} messages were sent"
    )
    assert all(400 <= a.status_code < 500 for a in answers if a.status_code != 303), counted
    assert len(sent) == 1, f"{len(sent)} messages were sent"
    (message_id,) = sent[0]
    location = next(a for a in answers if a.status_code == 303).headers["location"]
    assert location.endswith(f"/sent/{message_id}")
    assert await site.db.value("SELECT count(*) FROM recipient WHERE email = ?", recipient) == 1
    assert (
        await site.db.value(
            "SELECT count(*) FROM outbox_item WHERE channel = 'email' AND to_address = ?",
            recipient,
        )
        == 1
    )
    await asyncio.to_thread(site.mail.wait_for, recipient)
    await asyncio.sleep(SETTLE)
    assert len(site.mail.to(recipient)) == 1, "one notification per recipient"
    receipts = [m for m in site.mail.to(address) if "BEGIN SINETTI RECEIPT" in m.text()]
    assert len(receipts) == 1, f"{len(receipts)} signed receipts were mailed to the sender"
    events = await audit_events(site.db, message_id)
    # Sent once; delivered: the recipient's notification and the sender's receipt.
    assert (events["sent"], events["notification_delivered"]) == (1, 2), events


RACE_FILE = 64 * 1024
RACE_DELAYS = (0.0, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15)  # uploads start this long after Send
RACE_ROUNDS = 2


async def test_nothing_is_attached_after_send(
    site: Site, sender: tuple[Browser, str, str], browsers: list[Browser]
) -> None:
    _browser, _address, link = sender
    for _round in range(RACE_ROUNDS):  # the race is won by chance: run it a few times
        browser = site.browser()  # a new session each round: no draft left from the last
        browsers.append(browser)
        await browser.sign_in(link)
        await _race_send_against_uploads(site, browser, browsers)


async def _race_send_against_uploads(site: Site, browser: Browser, browsers: list[Browser]) -> None:
    csrf = await browser.csrf("/compose")
    recipient = new_recipient("race")
    saved = await browser.compose(
        csrf, recipient, files=[("first.txt", b"there before Send")], attach_only=True
    )
    assert saved.status_code == 200
    before_send = site.browser()  # a copy of the session as it was before Send
    browsers.append(before_send)
    before_send.copy_cookies_from(browser)
    started: dict[str, tuple[bytes, int]] = {}  # upload id → (its bytes, bytes sent so far)

    async def upload_half(delay: float, n: int) -> httpx.Response:
        """Announce a file and send its first half: an upload in flight."""
        await asyncio.sleep(delay)
        data = os.urandom(RACE_FILE)
        announced = await browser.announce(csrf, len(data), f"race-{n}.bin")
        if announced.status_code == 201 and not announced.json().get("complete"):
            upload_id = announced.json()["id"]
            put = await browser.put_chunk(csrf, upload_id, 0, data[: RACE_FILE // 2])
            started[upload_id] = (data, RACE_FILE // 2 if put.status_code == 200 else 0)
        return announced

    async def finish_or_drop_uploads() -> None:
        """Between tries: what is still unfinished is thrown away (Send refuses it)."""
        for upload_id in list(started):
            await browser.http.delete(
                f"/compose/uploads/{upload_id}", headers={"X-CSRF-Token": csrf}
            )

    sent: httpx.Response | None = None
    for attempt, delay in enumerate(RACE_DELAYS):
        answers = await asyncio.gather(
            browser.compose(csrf, recipient),
            *(upload_half(delay, attempt * BURST + n) for n in range(BURST)),
        )
        no_server_errors(answers)
        if answers[0].status_code == 303:
            sent = answers[0]
            break
        await finish_or_drop_uploads()
    assert sent is not None, (
        f"Send was refused in every race ({len(RACE_DELAYS)} tries): {answers[0].status_code}"
    )
    message_id = sent.headers["location"].rsplit("/", 1)[-1]
    attached_at_send = await site.db.value(
        "SELECT count(*) FROM attachment WHERE message_id = ?", message_id
    )

    # After Send: the rest of every upload started in the race, and new announcements from
    # the session and from a copy of it made before Send, all at once. An upload the race
    # started after Send, into a new draft, may go on; one into the sent message (or one the
    # server threw away) may not.
    owners = dict(
        await site.db.rows("SELECT id, message_id FROM upload WHERE message_id IS NOT NULL")
    )
    elsewhere = {str(i) for i, owner in owners.items() if str(owner) != message_id}
    unfinished = [(i, d, o) for i, (d, o) in started.items() if i not in elsewhere]
    late = [browser.put_chunk(csrf, i, o, d[o:]) for i, d, o in unfinished]
    late_puts = len(late)
    late += [
        browser.put_chunk(csrf, i, o, d[o:]) for i, (d, o) in started.items() if i in elsewhere
    ]
    late += [
        (browser if n % 2 else before_send).announce(csrf, RACE_FILE, f"late-{n}.bin")
        for n in range(max(BURST - late_puts, BURST // 2))
    ]
    answers = await at_once(late)
    no_server_errors(answers)
    refused_puts = [a for a in answers[:late_puts] if 400 <= a.status_code < 500]
    assert len(refused_puts) == late_puts, (
        f"chunks after Send to uploads of the sent message or thrown away: "
        f"{statuses(answers[:late_puts])}, expected all refused (4xx)"
    )
    new_puts = len(started) - late_puts

    sent_at = moment(await site.db.value("SELECT sent_at FROM message WHERE id = ?", message_id))
    attachments = await site.db.rows(
        "SELECT filename, created_at FROM attachment WHERE message_id = ?", message_id
    )
    late_ones = [name for name, created in attachments if moment(created) > sent_at]
    assert not late_ones, f"attached to the sent message after Send: {late_ones}"
    assert len(attachments) == attached_at_send
    assert (
        await site.db.value("SELECT count(*) FROM upload WHERE message_id = ?", message_id) == 0
    ), "uploads into the sent message remain"
    for answer in answers[late_puts + new_puts :]:
        if answer.status_code == 201:  # a new draft, not the sent message
            upload_id = answer.json().get("id")
            owner = await site.db.rows("SELECT message_id FROM upload WHERE id = ?", upload_id)
            assert owner and str(owner[0][0]) != message_id, "announced into the sent message"
        else:
            assert 400 <= answer.status_code < 500, answer.status_code
