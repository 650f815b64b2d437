"""Key rotation under load, at a real ``sinetti serve --workers 2``.

Messages with a sealed file each are sent and opened by their recipients. Then, all at once:
``sinetti keys rotate --new-key`` (a new key-encryption key in the key file, then re-wrap) and
more ``sinetti keys rotate`` processes that started before it, a burst of downloads of every
file by its recipient, and new messages being sent. What must hold:

- every download answers 200 with exactly the bytes that were sent, none fails while the rows
  of the keys change under it (the servers notice the new key file and open what it wraps);
- the rotations together re-wrap each data key once (the sum of what they report equals the
  rows that were re-wrapped), and in the end every key is under the new KEK;
- every file, old and new, still opens for its recipient afterwards;
- the first two files of a new draft, sent at once, agree on one data key (one row).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from portal.testing import new_recipient

from .helpers import Browser, Site, at_once, no_server_errors, path_of

SINETTI = str(Path(sys.executable).with_name("sinetti"))
MESSAGES = 8  # sent before the rotation
SENT_DURING = 4  # sent while it runs
ROTATIONS = 4  # `sinetti keys rotate` processes besides the one that makes the new key
DOWNLOADS = 60
FILE_SIZE = 200_000  # four segments


def _start(site: Site, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [SINETTI, "keys", *args],
        env=site.command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ended(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def _rewrapped(out: str) -> int:
    found = re.search(r"Re-wrapped (\d+) data key", out)
    assert found, out
    return int(found.group(1))


async def _send(site: Site, browser: Browser, tag: str) -> tuple[str, str, bytes]:
    """(recipient, message id, the file's bytes) of a message with one file."""
    data = os.urandom(FILE_SIZE)
    recipient = new_recipient(tag)
    csrf = await browser.csrf("/compose")
    sent = await browser.compose(csrf, recipient, files=[(f"{tag}.bin", data)])
    assert sent.status_code == 303, f"send: {sent.status_code}\n{sent.text[:800]}"
    return recipient, sent.headers["location"].rsplit("/sent/", 1)[1], data


async def _reader(
    site: Site, browsers: list[Browser], recipient: str, message_id: str
) -> tuple[Browser, str]:
    """The recipient's browser with the message open, and its file's download URL."""
    link = await site.recipient_link(recipient)
    reader = site.browser()
    browsers.append(reader)
    opened = await reader.open_message(link)
    assert opened.status_code == 303, f"open: {opened.status_code}\n{opened.text[:500]}"
    attachment = await site.db.value("SELECT id FROM attachment WHERE message_id = ?", message_id)
    return reader, f"{path_of(link)}/attachments/{attachment}"


async def _keks(site: Site) -> dict[str, int]:
    rows = await site.db.rows("SELECT kek_id, count(*) FROM message_key GROUP BY kek_id")
    return {str(kek): int(count) for kek, count in rows}


async def test_rotation_under_load_loses_no_download_and_rewraps_each_key_once(
    site: Site, sender: tuple[Browser, str, str], browsers: list[Browser]
) -> None:
    browser = sender[0]
    sent = [await _send(site, browser, f"keys{n}") for n in range(MESSAGES)]
    readers = [await _reader(site, browsers, r, m) for r, m, _data in sent]
    files = [data for _r, _m, data in sent]
    (old_kek, before), *more = (await _keks(site)).items()
    assert not more  # one KEK wraps every key so far

    maker = _start(site, "rotate", "--new-key", "--batch", "1")
    others = [_start(site, "rotate", "--batch", "1") for _ in range(ROTATIONS)]
    ended_all = asyncio.ensure_future(
        asyncio.gather(*(asyncio.to_thread(_ended, p) for p in [maker, *others]))
    )
    answers, during = [], []
    while not ended_all.done() or len(during) < SENT_DURING:  # bursts until they all ended
        answers += await at_once(
            readers[n % MESSAGES][0].http.get(readers[n % MESSAGES][1]) for n in range(DOWNLOADS)
        )
        if len(during) < SENT_DURING:
            during.append(await _send(site, browser, f"during{len(during)}"))
    ended = await ended_all
    print(f"{len(answers)} downloads in bursts of {DOWNLOADS} while the rotations ran")

    no_server_errors(answers)
    wrong = [n for n, a in enumerate(answers) if a.content != files[n % DOWNLOADS % MESSAGES]]
    assert {a.status_code for a in answers} == {200} and not wrong, wrong
    for code, out, err in ended:
        assert code in (0, 1) and "Traceback" not in err, f"exit {code}:\n{out}{err}"
    new_kek = re.search(r"New key-encryption key (\S+) wraps", ended[0][1])
    assert new_kek, ended[0][1]
    final = await asyncio.to_thread(_ended, _start(site, "rotate"))
    assert final[0] == 0, final

    assert new_kek.group(1) != old_kek
    assert await _keks(site) == {new_kek.group(1): before + SENT_DURING}
    reported = sum(_rewrapped(out) for _code, out, _err in [*ended, final])
    rewrapped_rows = await site.db.value(
        "SELECT count(*) FROM message_key WHERE rewrapped_at IS NOT NULL"
    )
    assert reported == int(rewrapped_rows) >= MESSAGES  # each key re-wrapped once
    readers += [await _reader(site, browsers, r, m) for r, m, _data in during]
    files += [data for _r, _m, data in during]
    after = await at_once(reader.http.get(url) for reader, url in readers)
    assert [a.content for a in after] == files


async def test_the_first_files_of_a_new_draft_sent_at_once_agree_on_one_key(
    site: Site, sender: tuple[Browser, str, str]
) -> None:
    browser = sender[0]
    csrf = await browser.csrf("/compose")
    before = sum((await _keks(site)).values())

    answers = await at_once(
        browser.compose(csrf, "", files=[(f"first{n}.bin", os.urandom(1000))], attach_only=True)
        for n in range(6)
    )

    no_server_errors(answers)
    assert {a.status_code for a in answers} == {200}
    draft = browser.compose_action.rsplit("draft=", 1)[1]
    keys = await site.db.value("SELECT count(*) FROM message_key WHERE message_id = ?", draft)
    files = await site.db.value("SELECT count(*) FROM attachment WHERE message_id = ?", draft)
    assert (int(keys), int(files)) == (1, 6)
    assert sum((await _keks(site)).values()) == before + 1
