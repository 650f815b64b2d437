"""The ``local`` key provider (plugins/keys_local): KEKs from PORTAL_KEK or a key file, made at
first start when neither exists; data keys wrapped under the first KEK open under any listed
one; a removed KEK is reported, not guessed."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest
from sinetti_keys_local import LocalKeyProvider, fingerprint

from portal.app import create_app
from portal.config import ConfigError
from portal.crypto.envelope import UnwrapError
from portal.keys.base import KeyUnavailable, WrappedKey
from portal.testing import builtin_plugins

from ..helpers import plain_settings

MESSAGE = b"message 7d0c"


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


async def provider(tmp_path, **options: str) -> LocalKeyProvider:
    made = LocalKeyProvider(plain_settings(tmp_path), options)
    await made.open()
    return made


async def test_without_a_key_the_first_start_makes_a_private_key_file_and_warns(tmp_path, caplog):
    keys = await provider(tmp_path)

    assert keys.file == tmp_path / "kek.keys"
    assert stat.S_IMODE(keys.file.stat().st_mode) == 0o600
    assert "for development" in caplog.text
    new = await keys.new_key(MESSAGE)
    assert await (await provider(tmp_path)).unwrap(new.wrapped, MESSAGE) == new.plain
    assert new.plain not in keys.file.read_bytes() and new.plain not in new.wrapped.blob


async def test_the_key_from_portal_kek_wraps_and_no_file_is_made(tmp_path):
    kek = os.urandom(32)
    keys = await provider(tmp_path, **{"": b64(kek)})

    new = await keys.new_key(MESSAGE)

    assert new.wrapped.kek_id == fingerprint(kek) == keys.current_kek_id
    assert not (tmp_path / "kek.keys").exists()
    assert await keys.unwrap(new.wrapped, MESSAGE) == new.plain


async def test_rotation_wraps_with_the_first_key_and_still_opens_with_the_older(tmp_path):
    old, new = os.urandom(32), os.urandom(32)
    before = await (await provider(tmp_path, **{"": b64(old)})).new_key(MESSAGE)
    both = await provider(tmp_path, **{"": f"{b64(new)}, {b64(old)}"})

    rewrapped = await both.rewrap(before.wrapped, MESSAGE)

    assert rewrapped.kek_id == fingerprint(new) != before.wrapped.kek_id
    only_new = await provider(tmp_path, **{"": b64(new)})
    assert await only_new.unwrap(rewrapped, MESSAGE) == before.plain
    with pytest.raises(KeyUnavailable, match=before.wrapped.kek_id):
        await only_new.unwrap(before.wrapped, MESSAGE)


async def test_a_new_key_in_the_file_goes_first_and_the_old_keys_stay(tmp_path):
    keys = await provider(tmp_path)
    first = keys.current_kek_id
    wrapped = await keys.wrap(os.urandom(32), MESSAGE)

    added = keys.add_key()

    assert added == keys.current_kek_id != first
    reopened = await provider(tmp_path)
    assert reopened.current_kek_id == added
    assert len(await reopened.unwrap(wrapped, MESSAGE)) == 32


async def test_a_running_provider_adopts_a_key_another_process_added(tmp_path):
    server = await provider(tmp_path)  # a server process, started before the rotation
    old = server.current_kek_id
    rotation = await provider(tmp_path)  # `sinetti keys rotate --new-key`, another process
    plain = os.urandom(32)
    rewrapped = await rotation.wrap(plain, MESSAGE)

    added = rotation.add_key()
    rewrapped = await rotation.rewrap(rewrapped, MESSAGE)

    assert rewrapped.kek_id == added != old
    assert await server.unwrap(rewrapped, MESSAGE) == plain  # the server reads the file again
    assert server.current_kek_id == added  # and wraps new keys with the new one
    assert (await server.wrap(os.urandom(32), MESSAGE)).kek_id == added


async def test_a_key_wrapped_for_another_message_does_not_open(tmp_path):
    keys = await provider(tmp_path)
    new = await keys.new_key(MESSAGE)
    with pytest.raises(UnwrapError):
        await keys.unwrap(WrappedKey(new.wrapped.kek_id, new.wrapped.blob), b"message other")


@pytest.mark.parametrize("length", [None, 16, 33])
async def test_a_kek_that_is_not_32_base64_bytes_names_its_variable_not_its_value(tmp_path, length):
    value = "not base64!" if length is None else b64(os.urandom(length))
    with pytest.raises(ConfigError, match=r"^PORTAL_KEK: each key") as error:
        await provider(tmp_path, **{"": value})
    assert value not in str(error.value)


async def test_an_empty_key_file_stops_start_up(tmp_path):
    (tmp_path / "kek.keys").write_text("\n")
    with pytest.raises(ConfigError, match="holds no key"):
        await provider(tmp_path)


def test_portal_keys_picks_the_local_provider_by_default(tmp_path):
    app = create_app(
        {"data_dir": str(tmp_path), "secret_key": "k" * 40, "KEK": b64(os.urandom(32))},
        plugins=builtin_plugins(),
    )
    assert isinstance(app.extensions["sinetti"].providers.keys, LocalKeyProvider)


def test_an_unknown_kek_setting_stops_start_up(tmp_path):
    with pytest.raises(ConfigError, match="PORTAL_KEK_FILES"):
        create_app(
            {"data_dir": str(tmp_path), "secret_key": "k" * 40, "KEK_FILES": "x"},
            plugins=builtin_plugins(),
        )


def test_processes_starting_together_agree_on_one_key_file(tmp_path):
    # `sinetti serve --workers 2`: every worker opens the provider at once on a new data dir.
    def start() -> str:
        made = LocalKeyProvider(plain_settings(tmp_path), {})
        asyncio.run(made.open())
        return made.current_kek_id

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: start(), range(8)))

    assert len(set(ids)) == 1
    assert len((tmp_path / "kek.keys").read_text().split()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kek.keys"]  # no temporary left
