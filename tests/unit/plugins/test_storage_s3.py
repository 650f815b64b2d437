"""The ``s3`` storage backend (plugins/storage_s3): its settings, start-up checks and layout.

What it shares with every backend is in tests/unit/storage/test_backends.py.
"""

from __future__ import annotations

import os
import time

import pytest
from sinetti_storage_s3 import S3Storage

from portal import db
from portal.app import create_app
from portal.config import ConfigError, load_settings
from portal.plugins import load_providers, make_plugin_manager
from portal.services.uploads import new_storage_key
from portal.storage.base import StorageError
from portal.testing import builtin_plugins, free_port, running_s3_server

from ..helpers import plain_settings


def options_of(config: dict[str, str]) -> dict[str, str]:
    """The backend's options from ``S3Server.portal_config`` (``s3_bucket`` → ``bucket``)."""
    return {key[3:]: value for key, value in config.items() if key.startswith("s3_")}


def s3_storage(tmp_path, **options: str) -> S3Storage:
    return S3Storage(plain_settings(tmp_path), options)


def test_s3_storage_is_registered_as_s3():
    import sinetti_storage_s3

    assert sinetti_storage_s3.register_storage_backends() == [S3Storage]
    assert S3Storage.name == "s3"


def test_selecting_s3_without_a_bucket_names_the_variable(tmp_path):
    settings = load_settings(
        environ={"PORTAL_STORAGE": "s3", "PORTAL_S3_ENDPOINT_URL": "http://127.0.0.1:9000"},
        override={"data_dir": tmp_path, "secret_key": "k" * 40},
    )

    with pytest.raises(ConfigError, match="PORTAL_S3_BUCKET"):
        load_providers(make_plugin_manager(builtin_plugins()), settings)


def test_a_misspelt_s3_setting_stops_start_up_even_with_local_storage(tmp_path):
    settings = load_settings(
        environ={"PORTAL_S3_BUCKETT": "attachments"},
        override={"data_dir": tmp_path, "secret_key": "k" * 40},
    )

    with pytest.raises(ConfigError, match="PORTAL_S3_BUCKETT: unknown setting"):
        load_providers(make_plugin_manager(builtin_plugins()), settings)


@pytest.mark.parametrize(
    ("options", "variable"),
    [
        ({"addressing_style": "dns"}, "PORTAL_S3_ADDRESSING_STYLE"),
        ({"access_key_id": "AKIA"}, "PORTAL_S3_ACCESS_KEY_ID"),
        ({"secret_access_key": "s"}, "PORTAL_S3_SECRET_ACCESS_KEY"),
        ({"endpoint_url": "minio:9000"}, "PORTAL_S3_ENDPOINT_URL"),
    ],
)
def test_wrong_settings_name_their_variable(tmp_path, options, variable):
    with pytest.raises(ConfigError, match=variable):
        s3_storage(tmp_path, bucket="b", **options)


def test_addressing_style_is_path_for_an_own_endpoint_and_auto_for_aws(tmp_path):
    assert s3_storage(tmp_path, bucket="b", endpoint_url="http://minio:9000").addressing_style == (
        "path"
    )
    assert s3_storage(tmp_path, bucket="b").addressing_style == "auto"
    assert s3_storage(tmp_path, bucket="b", addressing_style="virtual").addressing_style == (
        "virtual"
    )


async def test_opening_on_a_missing_bucket_says_so(tmp_path, s3_server):
    config = s3_server.portal_config("no-such-bucket")
    storage = s3_storage(tmp_path, **options_of(config))

    with pytest.raises(StorageError, match=r"no-such-bucket at .*: the bucket does not exist"):
        await storage.open()


async def test_an_unreachable_endpoint_is_a_storage_error(tmp_path):
    storage = s3_storage(
        tmp_path,
        bucket="b",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key_id="k",
        secret_access_key="s",
    )

    with pytest.raises(StorageError, match="cannot use the bucket"):
        await storage.open()


async def test_a_backend_that_is_not_open_says_so(tmp_path):
    storage = s3_storage(tmp_path, bucket="b")

    with pytest.raises(StorageError, match="not open"):
        await storage.start_upload(new_storage_key())


async def test_opening_widens_the_errors_of_that_backend_only(tmp_path, s3_server):
    import aiohttp
    from sinetti_storage_s3 import BASE_FAILURES

    config = options_of(s3_server.portal_config(s3_server.create_bucket()))
    opened, other = s3_storage(tmp_path, **config), s3_storage(tmp_path, **config)
    await opened.open()
    try:
        assert aiohttp.ClientError in opened.failures
        assert other.failures == BASE_FAILURES  # no state shared between instances
    finally:
        await opened.close()


async def test_objects_are_stored_under_the_prefix(tmp_path, s3_server):
    bucket = s3_server.create_bucket()
    config = s3_server.portal_config(bucket, prefix="sinetti/files/")
    storage = s3_storage(tmp_path, **options_of(config))
    await storage.open()
    try:
        key = new_storage_key()
        writer = await storage.writer(key)
        await writer.write(b"x")
        await writer.commit()

        listed = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
        assert [item["Key"] for item in listed] == [f"sinetti/files/{key}"]
    finally:
        await storage.close()
        s3_server.delete_bucket(bucket)


async def test_a_server_that_goes_away_gives_storage_errors(tmp_path):
    with running_s3_server() as server:
        bucket = server.create_bucket()
        config = server.portal_config(bucket)
        storage = s3_storage(tmp_path, **options_of(config))
        await storage.open()
        key = new_storage_key()
        writer = await storage.writer(key)
        await writer.write(os.urandom(100))
        await writer.commit()

    started = time.monotonic()
    try:
        with pytest.raises(StorageError):
            await storage.delete(key)
        with pytest.raises(StorageError):
            _ = [chunk async for chunk in storage.read(key)]
    finally:
        await storage.close()
    assert time.monotonic() - started < 15  # a few quick retries, not minutes


async def test_the_portal_starts_and_stops_with_s3_storage(portal_config, s3_server):
    bucket = s3_server.create_bucket()
    config = {**portal_config, **s3_server.portal_config(bucket)}
    await db.migrate(load_settings(override=config))
    app = create_app(config, plugins=builtin_plugins())

    async with app.test_app():
        storage = app.extensions["sinetti"].providers.storage
        assert isinstance(storage, S3Storage)
        assert storage.bucket == bucket
    assert storage._client is None  # closed after serving
    s3_server.delete_bucket(bucket)
