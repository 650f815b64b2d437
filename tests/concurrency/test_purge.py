"""The retention purge keeps its one-way state under parallel processes and survives SIGKILL.

A real ``sinetti serve --workers 2`` holds sent messages with a file each, a fresh message and
a draft with a file. The sent ones are made due by moving their ``sent_at`` back past
``PORTAL_RETENTION_DAYS`` in the server's database. Then, while the server runs:

- several ``sinetti purge`` processes start together (each waits at a gate just before it
  deletes messages, so that they delete at the same time): each due message is deleted by exactly
  one of them (the counts they print add up to the due messages), recorded by exactly one
  ``purged`` audit event, and its file is gone; the live message and the draft are untouched;
- one ``sinetti purge`` is killed with SIGKILL once it has purged a first message: each due
  message is then either whole (rows and files) or gone with one ``purged`` event, never half
  deleted; the next purge finishes the rest, and the only thing the kill leaves is files of
  messages already gone, exactly the orphans ``sinetti purge --dry-run`` counts (the orphan
  sweep deletes them once they are an hour old).

``sinetti purge`` runs what every server process runs every ten minutes
(:mod:`portal.services.housekeeping`), so the server's own rounds hold the same way; they
come only after ten minutes, so within this module the purges counted are the commands'.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from portal.testing import new_recipient

from .helpers import Browser, Site, attachments_opened, file_names, moment

SINETTI = str(Path(sys.executable).with_name("sinetti"))
RETENTION_DAYS = 30
SETTINGS = {"PORTAL_RETENTION_DAYS": str(RETENTION_DAYS)}
PURGERS = 8  # `sinetti purge` processes started together
DUE_PARALLEL = 20  # due messages the parallel purges share
DUE_KILLED = 50  # due messages of the purge that is killed
SESSIONS = 4  # browsers of the sender sending at once (each its own draft)
FILE_SIZE = 2048
POLL_SECONDS = 0.005


@dataclasses.dataclass
class Kept:
    """A message (sent or draft) as the test made it: its id and its files' bytes by key."""

    id: str
    files: dict[str, bytes]


@dataclasses.dataclass
class Scene:
    due: list[Kept]
    live: Kept  # sent just now: not due
    draft: Kept  # unsent, with a file


# -- setting the scene ---------------------------------------------------------------------


async def _files_of(site: Site, message_id: str, sent: dict[str, bytes]) -> dict[str, bytes]:
    """The message's files by storage key, with the bytes sent under each file's name."""
    rows = await file_names(site.db, site.server.data_dir, message_id)
    found = {key: sent[name] for key, name in rows}
    assert len(found) == len(sent), f"message {message_id}: {rows} for {sorted(sent)}"
    return found


async def _send(site: Site, browser: Browser, tag: str) -> Kept:
    files = {f"{tag}.bin": os.urandom(FILE_SIZE)}
    csrf = await browser.csrf("/compose")
    sent = await browser.compose(csrf, new_recipient("purge"), files=list(files.items()))
    assert sent.status_code == 303, f"send: {sent.status_code}\n{sent.text[:800]}"
    message_id = sent.headers["location"].rsplit("/sent/", 1)[1]
    return Kept(message_id, await _files_of(site, message_id, files))


async def _scene(site: Site, link: str, browsers: list[Browser], due: int) -> Scene:
    """``due`` sent messages moved past their retention, one fresh message, one draft."""
    sessions = [site.browser() for _ in range(SESSIONS)]
    browsers.extend(sessions)
    for session in sessions:
        await session.sign_in(link)

    async def send_some(index: int, session: Browser) -> list[Kept]:
        return [await _send(site, session, f"due-{index}-{n}") for n in range(due // SESSIONS)]

    batches = await asyncio.gather(*(send_some(i, s) for i, s in enumerate(sessions)))
    sent = [kept for batch in batches for kept in batch]
    sent += [await _send(site, sessions[0], f"due-x-{n}") for n in range(due - len(sent))]
    live = await _send(site, sessions[0], "live")

    drafter = sessions[1]
    files = {"draft.bin": os.urandom(FILE_SIZE)}
    csrf = await drafter.csrf("/compose")
    saved = await drafter.compose(
        csrf, new_recipient("draft"), files=list(files.items()), attach_only=True
    )
    assert saved.status_code == 200, f"attach: {saved.status_code}\n{saved.text[:800]}"
    draft_id = drafter.compose_action.rsplit("draft=", 1)[1]
    draft = Kept(draft_id, await _files_of(site, draft_id, files))

    for kept in sent:
        raw = await site.db.value("SELECT sent_at FROM message WHERE id = ?", kept.id)
        changed = await site.db.execute(
            "UPDATE message SET sent_at = ? WHERE id = ?",
            _earlier(raw, timedelta(days=RETENTION_DAYS + 1)),
            kept.id,
        )
        assert changed == 1
    return Scene(sent, live, draft)


async def _due_scene(
    site: Site, sender: tuple[Browser, str, str], browsers: list[Browser], due: int
) -> tuple[Scene, list[str]]:
    """The scene of ``due`` due messages, and their ids (each there before the purge)."""
    scene = await _scene(site, sender[2], browsers, due)
    due_ids = [kept.id for kept in scene.due]
    assert await _present(site, due_ids) == set(due_ids)
    return scene, due_ids


def _earlier(raw: Any, by: timedelta) -> Any:
    """A timestamp column's value ``by`` earlier, as the database holds it (asyncpg takes a
    datetime; SQLite holds text, compared as text: keep its format)."""
    if isinstance(raw, datetime):
        return raw - by
    text = str(raw)
    return (moment(text) - by).isoformat(sep=text[10])


# -- what the server holds -----------------------------------------------------------------


def _stored(site: Site) -> dict[str, bytes]:
    """Every finished file of the local storage, by key."""
    return {
        path.name: path.read_bytes()
        for path in site.server.stored_files()
        if path.parent.name != "tmp"
    }


async def _present(site: Site, ids: list[str]) -> set[str]:
    rows = await site.db.rows("SELECT id, status FROM message")
    return {str(mid) for mid, status in rows if str(mid) in ids and status == "sent"}


async def _purged_events(site: Site) -> Counter[str]:
    rows = await site.db.rows("SELECT message_id FROM audit_event WHERE event = 'purged'")
    return Counter(str(mid) for (mid,) in rows)


async def _child_rows(site: Site, message_id: str) -> tuple[int, int]:
    """(recipients, attachments) rows of the message."""
    recipients = await site.db.value(
        "SELECT count(*) FROM recipient WHERE message_id = ?", message_id
    )
    attachments = await site.db.value(
        "SELECT count(*) FROM attachment WHERE message_id = ?", message_id
    )
    return int(recipients), int(attachments)


async def _named_keys(site: Site) -> set[str]:
    attachments = await site.db.rows("SELECT storage_key FROM attachment")
    uploads = await site.db.rows("SELECT storage_key FROM upload")
    return {str(key) for (key,) in [*attachments, *uploads]}


async def _assert_whole(
    site: Site, kept: Kept, stored: dict[str, bytes], what: str, recipients: int = 1
) -> None:
    """The message has its recipients and attachments rows, and its files byte for byte
    (each stored sealed: opened as the server opens it)."""
    rows = await _child_rows(site, kept.id)
    assert rows == (recipients, len(kept.files)), f"{what} {kept.id}: rows {rows}"
    opened = await attachments_opened(site.db, site.server.data_dir, stored)
    for key, data in kept.files.items():
        assert opened.get(key) == hashlib.sha256(data).hexdigest(), (
            f"{what} {kept.id}: file {key} missing or changed"
        )


async def _assert_live_things_intact(site: Site, scene: Scene) -> None:
    stored = _stored(site)
    assert await _present(site, [scene.live.id]) == {scene.live.id}
    status = await site.db.value("SELECT status FROM message WHERE id = ?", scene.draft.id)
    assert status == "draft"
    await _assert_whole(site, scene.live, stored, "live message")
    await _assert_whole(site, scene.draft, stored, "draft", recipients=0)
    events = await _purged_events(site)
    assert events[scene.live.id] == 0 and events[scene.draft.id] == 0


async def _assert_each_gone_with_one_event(site: Site, ids: list[str]) -> None:
    """The messages ``ids`` and their rows are gone, each recorded by one ``purged`` event."""
    assert not await _present(site, ids)
    events = await _purged_events(site)
    assert {mid: events[mid] for mid in ids} == dict.fromkeys(ids, 1)
    for message_id in ids:
        assert await _child_rows(site, message_id) == (0, 0), message_id


def _assert_no_traceback_in_server_log(site: Site) -> None:
    log = site.server.log()
    assert "Traceback" not in log, log[-4000:]


# -- running `sinetti purge` ---------------------------------------------------------------


def _start_purge(site: Site, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [SINETTI, "purge", "--json", *args],
        env=site.command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


#: ``sinetti purge --json`` as the ``sinetti`` script runs it (``portal.cli.main``), with a
#: gate just before it deletes messages: it prints "ready" and waits for a line on stdin.
#: Started together, the processes' start-up (imports, connecting, the clean-up) on a loaded
#: machine spreads them by more than the whole message purge takes (a few milliseconds a
#: message on SQLite); through the gate they all delete the same messages at the same time.
GATED_PURGE = """
import asyncio, sys
import portal.cli
from portal.services import purge

deleting = purge.purge_messages

async def at_the_gate(*args, **kwargs):
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    return await deleting(*args, **kwargs)

purge.purge_messages = at_the_gate
sys.exit(portal.cli.main(["purge", "--json"]))
"""


def _start_gated_purges(site: Site, count: int) -> list[subprocess.Popen[str]]:
    """``count`` purges, each waiting at its gate; all are let through at once."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", GATED_PURGE],
            env=site.command_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        for process in processes:
            assert process.stdout is not None and process.stderr is not None
            ready = process.stdout.readline()
            assert ready == "ready\n", f"a purge did not reach its gate:\n{process.stderr.read()}"
    except BaseException:
        for process in processes:
            process.kill()  # our own children, by their Popen
            process.communicate()
        raise
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    return processes


def _ended(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def _counts(ended: tuple[int, str, str]) -> dict[str, int]:
    returncode, out, err = ended
    assert returncode == 0, f"`sinetti purge` exited {returncode}:\n{out}{err}"
    assert "Traceback" not in err, err
    return {str(k): int(v) for k, v in json.loads(out).items()}


async def _purge(site: Site, *args: str) -> dict[str, int]:
    return _counts(await asyncio.to_thread(_ended, _start_purge(site, *args)))


# -- the tests -----------------------------------------------------------------------------


async def test_parallel_purges_delete_each_due_message_once_and_record_it_once(
    site: Site, sender: tuple[Browser, str, str], browsers: list[Browser]
) -> None:
    scene, due_ids = await _due_scene(site, sender, browsers, DUE_PARALLEL)
    due_keys = {key for kept in scene.due for key in kept.files}
    assert due_keys <= set(_stored(site))

    processes = await asyncio.to_thread(_start_gated_purges, site, PURGERS)
    ended = await asyncio.gather(*(asyncio.to_thread(_ended, p) for p in processes))
    failed = [(code, err) for code, _out, err in ended if code != 0 or "Traceback" in err]
    assert not failed, f"{len(failed)} of {PURGERS} purges failed; the first:\n{failed[0][1]}"
    results = [_counts(one) for one in ended]

    counts = [result["messages"] for result in results]
    print(f"messages purged by each of {PURGERS} parallel purges: {counts}")
    assert sum(counts) == len(scene.due), f"each due message purged once: {counts}"
    await _assert_each_gone_with_one_event(site, due_ids)
    assert not due_keys & set(_stored(site)), "files of purged messages are left"
    assert all(result["orphans"] == 0 for result in results), results
    await _assert_live_things_intact(site, scene)
    _assert_no_traceback_in_server_log(site)


async def test_purge_killed_midway_leaves_nothing_half_done_and_the_next_purge_finishes(
    site: Site, sender: tuple[Browser, str, str], browsers: list[Browser]
) -> None:
    scene, due_ids = await _due_scene(site, sender, browsers, DUE_KILLED)
    before = int(await site.db.value("SELECT coalesce(max(id), 0) FROM audit_event"))

    process = _start_purge(site)
    while not await site.db.value(
        "SELECT count(*) FROM audit_event WHERE event = 'purged' AND id > ?", before
    ):
        assert process.poll() is None, "the purge ended before it purged anything"
        await asyncio.sleep(POLL_SECONDS)
    process.send_signal(signal.SIGKILL)
    killed, _out, _err = await asyncio.to_thread(_ended, process)
    assert killed == -signal.SIGKILL

    # At the kill: every due message whole, or gone with its one event; files may outlive it.
    present = await _present(site, due_ids)
    events = await _purged_events(site)
    stored = _stored(site)
    gone = [kept for kept in scene.due if kept.id not in present]
    for kept in scene.due:
        if kept.id in present:
            assert events[kept.id] == 0, f"{kept.id} is there but recorded as purged"
            await _assert_whole(site, kept, stored, "due message")
        else:
            assert events[kept.id] == 1, f"{kept.id} is gone with {events[kept.id]} events"
            assert await _child_rows(site, kept.id) == (0, 0), kept.id
    left = {key for kept in gone for key in kept.files if key in stored}
    print(
        f"the killed purge deleted {len(gone)} of {len(scene.due)} due messages "
        f"and left {len(left)} of their files"
    )
    assert 1 <= len(gone) < len(scene.due), "the kill came after the end: it proves nothing"

    finished = await _purge(site)
    assert finished["messages"] == len(scene.due) - len(gone)
    await _assert_each_gone_with_one_event(site, due_ids)
    await _assert_live_things_intact(site, scene)

    # What the kill left: files no row names, exactly those of messages it had deleted.
    stored = _stored(site)
    orphans = set(stored) - await _named_keys(site)
    assert orphans == left
    due = await _purge(site, "--dry-run", "--orphans-older-than", "0")
    assert due["dry_run"] == 1 and due["messages"] == 0
    assert due["orphans"] == len(orphans)
    assert set(_stored(site)) == set(stored), "a dry run deleted something"
    _assert_no_traceback_in_server_log(site)
