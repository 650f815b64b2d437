"""``backend``: each storage backend in turn (local in a temporary data directory, S3 on a
moto server on loopback with a fresh bucket), so every test of this folder runs once per
backend. ``backends.make()`` opens another instance on the same storage, as a second portal
process would; ``backends.leftovers()`` lists whatever is stored, finished or not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from portal.storage.base import StorageBackend
from portal.testing import S3Server

from ..helpers import plain_settings, stored_files


class Backends:
    """Makes instances of one backend on one storage place and tells what is stored there."""

    def __init__(self) -> None:
        self.opened: list[StorageBackend] = []

    def new(self) -> StorageBackend:
        raise NotImplementedError

    async def make(self) -> StorageBackend:
        backend = self.new()
        await backend.open()
        self.opened.append(backend)
        return backend

    def leftovers(self) -> list[str]:
        raise NotImplementedError

    async def close(self) -> None:
        for backend in self.opened:
            await backend.close()


class LocalBackends(Backends):
    def __init__(self, data_dir: Path) -> None:
        super().__init__()
        self.data_dir = data_dir

    def new(self) -> StorageBackend:
        from sinetti_storage_local import LocalStorage

        return LocalStorage(plain_settings(self.data_dir), {})

    def leftovers(self) -> list[str]:
        return [path.name for path in stored_files(self.data_dir)]


class S3Backends(Backends):
    def __init__(self, server: S3Server, bucket: str, data_dir: Path) -> None:
        super().__init__()
        self.server, self.bucket, self.data_dir = server, bucket, data_dir

    def new(self) -> StorageBackend:
        from sinetti_storage_s3 import S3Storage

        settings = plain_settings(
            self.data_dir, **self.server.portal_config(self.bucket, prefix="attachments/")
        )
        return S3Storage(settings, settings.options_for(S3Storage.settings_prefix))

    def leftovers(self) -> list[str]:
        s3 = self.server.client()
        objects = s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        uploads = s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        return [item["Key"] for item in objects] + [f"{u['Key']} (upload)" for u in uploads]


@pytest.fixture(params=["local", "s3"])
def backends(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backends]:
    if request.param == "local":
        yield LocalBackends(tmp_path)
        return
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = server.create_bucket()
    try:
        yield S3Backends(server, bucket, tmp_path)
    finally:
        server.delete_bucket(bucket)  # moto keeps objects in memory


@pytest.fixture
async def backend(backends: Backends) -> AsyncIterator[Any]:
    """The backend under test, opened; closed (with any other instance made) afterwards."""
    first = await backends.make()
    try:
        yield first
    finally:
        await backends.close()
