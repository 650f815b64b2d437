"""``sinetti keys status`` and ``sinetti keys rotate [--new-key]`` on a data directory: a new
key-encryption key, every data key re-wrapped under it and still opening, a rotation that
resumes, and a provider that cannot make keys refused with exit code 2."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid

import pytest

from portal import db
from portal.app import create_app
from portal.cli import main
from portal.models import Message, MessageKey, Sender
from portal.services import message_keys

pytestmark = pytest.mark.usefixtures("restore_umask")


async def _in_portal(work):
    app = create_app()
    portal = app.extensions["sinetti"]
    await db.connect(portal.settings)
    await portal.providers.keys.open()
    try:
        async with app.app_context():
            return await work()
    finally:
        await db.close()


def messages_with_keys(count: int) -> dict[uuid.UUID, bytes]:
    async def make() -> dict[uuid.UUID, bytes]:
        sender = await Sender.create(email="liisa@example.com")
        made = {}
        for _ in range(count):
            message = await Message.create(id=uuid.uuid4(), sender=sender)
            made[message.id] = await message_keys.ensure(message.id)
        return made

    return asyncio.run(_in_portal(make))


def data_keys(ids) -> dict[uuid.UUID, bytes]:
    async def read() -> dict[uuid.UUID, bytes]:
        return {message_id: await message_keys.data_key(message_id) for message_id in ids}

    return asyncio.run(_in_portal(read))


def kek_ids() -> set[str]:
    async def read() -> set[str]:
        return set(await MessageKey.all().values_list("kek_id", flat=True))

    return asyncio.run(_in_portal(read))


def test_rotate_with_a_new_key_rewraps_every_data_key_and_they_still_open(
    migrated_data_dir, capsys
):
    made = messages_with_keys(5)
    (before,) = kek_ids()

    assert main(["keys", "rotate", "--new-key", "--batch", "2"]) == 0

    out = capsys.readouterr().out
    (after,) = kek_ids()
    assert after != before and f"New key-encryption key {after}" in out
    assert "Re-wrapped 5 data key(s); 0 left under older keys." in out
    assert data_keys(made) == made
    assert (
        len((migrated_data_dir / "kek.keys").read_text().split()) == 2
    )  # the old one stays, second


def test_status_counts_the_data_keys_of_each_key_encryption_key(migrated_data_dir, capsys):
    messages_with_keys(3)
    (current,) = kek_ids()

    assert main(["keys", "status"]) == 0

    assert capsys.readouterr().out == f"{current} (current): 3 data key(s)\n"


def test_rotate_without_a_new_key_resumes_and_does_nothing_twice(migrated_data_dir, capsys):
    messages_with_keys(2)
    keyring = migrated_data_dir / "kek.keys"
    # A new key put first by hand (as an operator does with PORTAL_KEK), nothing re-wrapped.
    keyring.write_text(base64.b64encode(os.urandom(32)).decode() + "\n" + keyring.read_text())

    assert main(["keys", "rotate"]) == 0
    assert main(["keys", "rotate"]) == 0

    out = capsys.readouterr().out
    assert "Re-wrapped 2 data key(s); 0 left" in out and "Re-wrapped 0 data key(s); 0 left" in out
    assert len(kek_ids()) == 1


def test_a_new_key_is_refused_when_the_keys_come_from_portal_kek(
    migrated_data_dir, monkeypatch, capsys
):
    monkeypatch.setenv("PORTAL_KEK", base64.b64encode(os.urandom(32)).decode())

    assert main(["keys", "rotate", "--new-key"]) == 2

    assert "PORTAL_KEK is set" in capsys.readouterr().err
