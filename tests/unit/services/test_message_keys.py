"""portal.services.message_keys: a message's data key is stored only wrapped, opens for that
message alone, goes with the message (crypto-shredding), and rotation re-wraps every key once,
resumably, without changing it."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from tortoise.exceptions import DoesNotExist

from portal.crypto.envelope import UnwrapError
from portal.models import Message, MessageKey, Sender
from portal.services import message_keys


@pytest.fixture
async def app_context(portal_app):
    async with portal_app.app.app_context():
        yield portal_app.app


async def new_message() -> uuid.UUID:
    sender = await Sender.create(email=f"{uuid.uuid4().hex[:8]}@example.com")
    return (await Message.create(id=uuid.uuid4(), sender=sender)).id


async def test_the_data_key_is_stored_only_wrapped_and_opens_again(app_context):
    message_id = await new_message()

    plain = await message_keys.ensure(message_id)

    row = await MessageKey.get(message_id=message_id)
    assert len(plain) == 32 and plain not in bytes(row.wrapped)
    assert await message_keys.data_key(message_id) == plain


async def test_a_wrapped_key_moved_to_another_message_does_not_open(app_context):
    first, second = await new_message(), await new_message()
    await message_keys.ensure(first)
    await message_keys.ensure(second)
    stolen = await MessageKey.get(message_id=first)
    await MessageKey.filter(message_id=second).update(wrapped=bytes(stolen.wrapped))
    message_keys.forget(second)  # read the row, not this process's memory

    with pytest.raises(UnwrapError):
        await message_keys.data_key(second)


async def test_deleting_the_message_deletes_its_key(app_context):
    message_id = await new_message()
    await message_keys.ensure(message_id)

    await Message.filter(id=message_id).delete()
    message_keys.forget(message_id)  # the purge does it; other processes' caches expire

    assert not await MessageKey.exists(message_id=message_id)
    with pytest.raises(DoesNotExist):
        await message_keys.data_key(message_id)


async def test_rotation_rewraps_every_key_once_under_the_new_kek_and_keeps_it(app_context):
    keys = app_context.extensions["sinetti"].providers.keys
    ids = [await new_message() for _ in range(7)]
    plain = {message_id: await message_keys.ensure(message_id) for message_id in ids}
    old_kek = keys.current_kek_id
    new_kek = keys.add_key()

    first = await message_keys.rotate(batch=2, limit=3)  # interrupted after three
    assert (first.rewrapped, first.left) == (3, 4)
    parallel = await asyncio.gather(*(message_keys.rotate(batch=2) for _ in range(4)))

    assert first.rewrapped + sum(done.rewrapped for done in parallel) == len(ids)
    assert all(done.left == 0 for done in parallel)
    rows = await MessageKey.filter(message_id__in=ids)
    assert {row.kek_id for row in rows} == {new_kek} != {old_kek}
    assert all(row.rewrapped_at is not None for row in rows)
    for message_id in ids:
        message_keys.forget(message_id)  # unwrap the re-wrapped rows, not the memory
    assert {message_id: await message_keys.data_key(message_id) for message_id in ids} == plain
    assert (await message_keys.rotate()).rewrapped == 0


async def test_parallel_first_uses_of_a_new_draft_agree_on_one_key(app_context):
    message_id = await new_message()

    keys = await asyncio.gather(*(message_keys.ensure(message_id) for _ in range(8)))

    assert len(set(keys)) == 1
    assert await MessageKey.filter(message_id=message_id).count() == 1
    app_context.extensions["sinetti"].data_keys.forget(message_id)
    assert await message_keys.data_key(message_id) == keys[0]


async def test_a_cached_key_saves_the_provider_a_call(app_context, monkeypatch):
    message_id = await new_message()
    plain = await message_keys.ensure(message_id)
    provider = app_context.extensions["sinetti"].providers.keys
    calls = []
    unwrap = provider.unwrap

    async def counting_unwrap(*args, **kwargs):
        calls.append(args)
        return await unwrap(*args, **kwargs)

    monkeypatch.setattr(provider, "unwrap", counting_unwrap)
    assert [await message_keys.data_key(message_id) for _ in range(3)] == [plain] * 3
    assert calls == []
    app_context.extensions["sinetti"].data_keys.forget(message_id)
    assert await message_keys.data_key(message_id) == plain
    assert len(calls) == 1


async def test_a_rotation_follows_a_key_made_current_while_it_runs(app_context, monkeypatch):
    keys = app_context.extensions["sinetti"].providers.keys
    ids = [await new_message() for _ in range(4)]
    for message_id in ids:
        await message_keys.ensure(message_id)
    keys.add_key()
    rewrap, newer = keys.rewrap, []

    async def rewrap_while_another_process_adds_a_key(wrapped, context):
        if not newer:
            newer.append(keys.add_key())  # `keys rotate --new-key` elsewhere, meanwhile
        return await rewrap(wrapped, context)

    monkeypatch.setattr(keys, "rewrap", rewrap_while_another_process_adds_a_key)

    done = await asyncio.wait_for(message_keys.rotate(batch=1), timeout=60)

    assert done.left == 0
    rows = await MessageKey.filter(message_id__in=ids)
    assert {row.kek_id for row in rows} == set(newer)
