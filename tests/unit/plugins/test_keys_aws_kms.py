"""The ``aws-kms`` key provider (plugins/keys_aws_kms) against moto's KMS on loopback (the
same moto server that stands in for S3): data keys made and unwrapped by KMS, bound to their
message, re-encrypted under a new KMS key without the portal seeing them, and a KMS that is
unreachable or a key that does not exist reported as such."""

from __future__ import annotations

import boto3
import pytest
from sinetti_keys_aws_kms import KmsKeyProvider

from portal.config import ConfigError
from portal.crypto.envelope import UnwrapError
from portal.keys.base import KeyUnavailable
from portal.testing import CuttableProxy, S3Server

from ..helpers import plain_settings

MESSAGE = b"message:5b1d"


def kms_client(server: S3Server, endpoint: str | None = None):
    return boto3.client(
        "kms",
        endpoint_url=endpoint or server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
    )


def new_kms_key(server: S3Server) -> str:
    return str(kms_client(server).create_key()["KeyMetadata"]["Arn"])


def options(server: S3Server, key_id: str, endpoint: str | None = None) -> dict[str, str]:
    return {
        "key_id": key_id,
        "endpoint_url": endpoint or server.endpoint_url,
        "region": server.region,
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
    }


async def opened(tmp_path, server: S3Server, key_id: str, endpoint: str | None = None):
    provider = KmsKeyProvider(plain_settings(tmp_path), options(server, key_id, endpoint))
    await provider.open()
    return provider


async def test_kms_makes_a_data_key_that_it_alone_unwraps_for_its_message(tmp_path, s3_server):
    key = new_kms_key(s3_server)
    provider = await opened(tmp_path, s3_server, key)
    try:
        made = await provider.new_key(MESSAGE)

        assert len(made.plain) == 32 and made.plain not in made.wrapped.blob
        assert made.wrapped.kek_id == key == provider.current_kek_id
        assert await provider.unwrap(made.wrapped, MESSAGE) == made.plain
        with pytest.raises(UnwrapError):
            await provider.unwrap(made.wrapped, b"message:other")
    finally:
        await provider.close()


async def test_rotation_reencrypts_under_the_new_kms_key(tmp_path, s3_server):
    old_key, new_key = new_kms_key(s3_server), new_kms_key(s3_server)
    before = await opened(tmp_path, s3_server, old_key)
    made = await before.new_key(MESSAGE)
    await before.close()
    after = await opened(tmp_path, s3_server, new_key)
    try:
        rewrapped = await after.rewrap(made.wrapped, MESSAGE)

        assert rewrapped.kek_id == new_key != made.wrapped.kek_id
        assert await after.unwrap(rewrapped, MESSAGE) == made.plain
    finally:
        await after.close()


async def test_an_unreachable_kms_is_key_unavailable_not_a_wrong_key(tmp_path, s3_server):
    proxy = CuttableProxy(int(s3_server.endpoint_url.rsplit(":", 1)[1]))
    provider = await opened(tmp_path, s3_server, new_kms_key(s3_server), proxy.url)
    try:
        made = await provider.new_key(MESSAGE)
        proxy.cut(60)

        with pytest.raises(KeyUnavailable):
            await provider.unwrap(made.wrapped, MESSAGE)
    finally:
        proxy.close()
        await provider.close()


async def test_a_kms_key_that_does_not_exist_stops_start_up(tmp_path, s3_server):
    missing = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    with pytest.raises(KeyUnavailable, match="KMS key"):
        await opened(tmp_path, s3_server, missing)


def test_the_kms_key_id_is_required(tmp_path):
    with pytest.raises(ConfigError, match=r"^PORTAL_KMS_KEY_ID: required"):
        KmsKeyProvider(plain_settings(tmp_path), {})
