"""Storage backend ``s3``: attachments in an S3 bucket (AWS, MinIO, Ceph RGW, …) via aioboto3.

Settings (``PORTAL_STORAGE=s3``):

- ``PORTAL_S3_BUCKET``: the bucket; it must exist (required).
- ``PORTAL_S3_ENDPOINT_URL``: the S3 service of MinIO, Ceph, …; empty for AWS.
- ``PORTAL_S3_REGION``: e.g. ``eu-north-1``; empty: from the AWS configuration.
- ``PORTAL_S3_ACCESS_KEY_ID`` / ``PORTAL_S3_SECRET_ACCESS_KEY``: both or neither; without
  them the standard AWS credential chain applies (environment, ``~/.aws``, instance role, …).
- ``PORTAL_S3_ADDRESSING_STYLE``: ``path`` (``https://host/bucket/key``), ``virtual``
  (``https://bucket.host/key``) or ``auto`` (botocore decides). Default: ``path`` when an
  endpoint URL is set (MinIO and Ceph seldom have wildcard DNS for bucket names), ``auto``
  otherwise (AWS).
- ``PORTAL_S3_PREFIX``: put before every key, e.g. ``sinetti/`` to share a bucket.

One client is opened before serving and closed after. Objects written in one request are
uploaded in 8 MiB parts as the bytes arrive (a single PUT when smaller), so nothing is visible
before commit and memory stays bounded; resumable uploads are S3 multipart uploads.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from portal.api import (
    ConfigError,
    ObjectNotFound,
    Settings,
    StorageBackend,
    StorageError,
    StorageWriter,
    StoredItem,
    hookimpl,
)

PART_SIZE = 8 * 1024 * 1024  # S3 wants at least 5 MiB in every part but the last
CHUNK = 256 * 1024  # what read() yields at most
#: A resumable part is held in memory before it is sent; the portal sends 8 MiB parts.
MAX_PART_SIZE = 64 * 1024 * 1024
ADDRESSING_STYLES = ("auto", "path", "virtual")
_KEY = re.compile(r"^[0-9a-f]{16,128}$")
#: What the S3 client raises before it is opened: service errors and transport errors.
#: :meth:`S3Storage.open` adds aiohttp's (raised while streaming) to the instance's
#: ``failures``: aiohttp and aioboto3 weigh some 60 MB, so they are only imported when this
#: backend is selected and opened, not in every portal process.
BASE_FAILURES: tuple[type[BaseException], ...] = (ClientError, BotoCoreError, TimeoutError)


def _code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


class S3Writer(StorageWriter):
    """Buffers up to one part; the first full part starts a multipart upload."""

    def __init__(self, storage: S3Storage, key: str) -> None:
        self.storage = storage
        self.key = key
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []

    async def write(self, data: bytes | bytearray) -> None:
        self.buffer += data
        while len(self.buffer) >= PART_SIZE:
            part = bytes(self.buffer[:PART_SIZE])
            del self.buffer[:PART_SIZE]
            await self._upload(part)

    async def _upload(self, part: bytes) -> None:
        storage = self.storage
        if self.upload_id is None:
            self.upload_id = await storage.start_upload(self.key)
        number = len(self.parts) + 1
        try:
            response = await storage.client.upload_part(
                Bucket=storage.bucket,
                Key=storage.object_key(self.key),
                UploadId=self.upload_id,
                PartNumber=number,
                Body=part,
            )
        except storage.failures as exc:
            raise StorageError(f"S3 upload of part {number} of {self.key}: {exc}") from exc
        self.parts.append({"ETag": response["ETag"], "PartNumber": number})

    async def commit(self) -> None:
        storage = self.storage
        if self.upload_id is None:
            try:
                await storage.client.put_object(
                    Bucket=storage.bucket, Key=storage.object_key(self.key), Body=bytes(self.buffer)
                )
            except storage.failures as exc:
                raise StorageError(f"S3 upload of {self.key}: {exc}") from exc
            finally:
                self.buffer = bytearray()
            return
        try:
            if self.buffer or not self.parts:
                await self._upload(bytes(self.buffer))
                self.buffer = bytearray()
            await storage.complete_upload(
                self.key, self.upload_id, [part["ETag"] for part in self.parts]
            )
        except StorageError:
            await self.abort()
            raise
        self.upload_id = None

    async def abort(self) -> None:
        self.buffer = bytearray()
        upload_id, self.upload_id = self.upload_id, None
        if upload_id is not None:
            await self.storage.abort_upload(self.key, upload_id)


class S3Storage(StorageBackend):
    name = "s3"
    settings_prefix = "S3_"
    known_options = frozenset(
        {
            "endpoint_url",
            "region",
            "bucket",
            "access_key_id",
            "secret_access_key",
            "addressing_style",
            "prefix",
        }
    )

    def __init__(self, settings: Settings, options: dict[str, str]) -> None:
        super().__init__(settings, options)
        self.bucket = self.option.text("bucket", required="when PORTAL_STORAGE=s3")
        self.endpoint_url = self.option.text("endpoint_url") or None
        if self.endpoint_url and not self.endpoint_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"PORTAL_S3_ENDPOINT_URL: expected an http(s) URL, got {self.endpoint_url!r}"
            )
        self.region = self.option.text("region") or None
        self.access_key_id = self.option.text("access_key_id") or None
        self.secret_access_key = self.option.text("secret_access_key") or None
        if bool(self.access_key_id) != bool(self.secret_access_key):
            raise ConfigError(
                "PORTAL_S3_ACCESS_KEY_ID / PORTAL_S3_SECRET_ACCESS_KEY: set both or neither"
            )
        default_style = "path" if self.endpoint_url else "auto"
        self.addressing_style = self.option.choice(
            "addressing_style", ADDRESSING_STYLES, default_style
        )
        self.prefix = options.get("prefix", "")
        #: What this backend's client raises (see :data:`BASE_FAILURES`).
        self.failures: tuple[type[BaseException], ...] = BASE_FAILURES
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None

    # -- connection -----------------------------------------------------------------------

    @property
    def where(self) -> str:
        return f"s3://{self.bucket} at {self.endpoint_url or 'AWS'}"

    @property
    def client(self) -> Any:
        if self._client is None:
            raise StorageError("the S3 storage backend is not open")
        return self._client

    async def open(self) -> None:
        if self._client is not None:
            return
        import aioboto3
        import aiohttp
        from botocore.config import Config

        self.failures = (*BASE_FAILURES, aiohttp.ClientError)
        session = aioboto3.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )
        config = Config(
            s3={"addressing_style": self.addressing_style},
            # AWS's recommended retry mode: a few quick retries with jittered back-off, so an
            # unreachable service fails a request in seconds rather than the legacy mode's ~20.
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=10,
        )
        stack = contextlib.AsyncExitStack()
        try:
            self._client = await stack.enter_async_context(
                session.client("s3", endpoint_url=self.endpoint_url, config=config)
            )
            await self._client.head_bucket(Bucket=self.bucket)
        except BaseException as exc:
            self._client = None
            await stack.aclose()
            if isinstance(exc, ClientError):
                code = _code(exc)
                if code in ("404", "NoSuchBucket", "NotFound"):
                    raise StorageError(f"{self.where}: the bucket does not exist") from exc
                if code in ("403", "AccessDenied", "Forbidden"):
                    raise StorageError(
                        f"{self.where}: access denied (check the credentials and bucket policy)"
                    ) from exc
            if isinstance(exc, self.failures):
                raise StorageError(f"{self.where}: cannot use the bucket: {exc}") from exc
            raise
        self._stack = stack

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    # -- keys -------------------------------------------------------------------------------

    def object_key(self, key: str) -> str:
        if not _KEY.match(key):
            raise ObjectNotFound(key)
        return self.prefix + key

    # -- one request ------------------------------------------------------------------------

    async def writer(self, key: str) -> StorageWriter:
        self.object_key(key)
        return S3Writer(self, key)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": self.object_key(key)}
        if end is not None and end <= start:
            await self._head(key)  # nothing to read, but a missing object is still an error
            return
        if start or end is not None:
            request["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            response = await self.client.get_object(**request)
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                raise ObjectNotFound(key) from None
            if _code(exc) == "InvalidRange":
                return  # the object is shorter than start: nothing to yield
            raise StorageError(f"S3 read of {key}: {exc}") from exc
        except self.failures as exc:
            raise StorageError(f"S3 read of {key}: {exc}") from exc
        body = response["Body"]
        try:
            while True:
                try:
                    data = await body.read(CHUNK)
                except self.failures as exc:
                    raise StorageError(f"S3 read of {key}: {exc}") from exc
                if not data:
                    break
                yield data
        finally:
            body.close()  # also when the reader stops early: never drain the rest

    async def _head(self, key: str) -> None:
        try:
            await self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFound(key) from None
            raise StorageError(f"S3 read of {key}: {exc}") from exc
        except self.failures as exc:
            raise StorageError(f"S3 read of {key}: {exc}") from exc

    async def delete(self, key: str) -> None:
        try:
            object_key = self.object_key(key)
        except ObjectNotFound:
            return
        try:
            await self.client.delete_object(Bucket=self.bucket, Key=object_key)
        except self.failures as exc:
            raise StorageError(f"S3 delete of {key}: {exc}") from exc

    # -- resumable uploads: S3 multipart uploads -------------------------------------------

    async def start_upload(self, key: str) -> str:
        try:
            response = await self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.object_key(key)
            )
        except self.failures as exc:
            raise StorageError(f"S3 upload of {key}: {exc}") from exc
        return str(response["UploadId"])

    async def upload_part(
        self,
        key: str,
        upload_id: str,
        number: int,
        offset: int,
        data: AsyncIterable[bytes | bytearray],
    ) -> str:
        if not 1 <= number <= 10_000:
            raise StorageError(f"S3 upload of {key}: part number {number} out of range")
        object_key = self.object_key(key)
        # A part is at most the portal's chunk size (8 MiB): buffered, then sent with its
        # length (S3 needs it up front). A stream that fails here sends nothing at all.
        pieces: list[bytes | bytearray] = []
        size = 0
        async for chunk in data:
            pieces.append(chunk)
            size += len(chunk)
            if size > MAX_PART_SIZE:
                raise StorageError(f"S3 upload of {key}: part {number} is over 64 MiB")
        body = b"".join(pieces)  # one copy of the part, not a buffer and a copy of it
        del pieces
        try:
            response = await self.client.upload_part(
                Bucket=self.bucket,
                Key=object_key,
                UploadId=upload_id,
                PartNumber=number,
                Body=body,
            )
        except self.failures as exc:
            raise StorageError(f"S3 upload of part {number} of {key}: {exc}") from exc
        return str(response["ETag"])

    async def complete_upload(self, key: str, upload_id: str, tags: list[str]) -> None:
        parts = [{"ETag": tag, "PartNumber": number} for number, tag in enumerate(tags, 1)]
        try:
            await self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.object_key(key),
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except self.failures as exc:
            raise StorageError(f"S3 upload of {key}: cannot complete: {exc}") from exc

    async def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            object_key = self.object_key(key)
        except ObjectNotFound:
            return
        try:
            await self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=object_key, UploadId=upload_id
            )
        except ClientError as exc:
            if _code(exc) in ("NoSuchUpload", "404"):
                return
            raise StorageError(f"S3 abort of the upload of {key}: {exc}") from exc
        except self.failures as exc:
            raise StorageError(f"S3 abort of the upload of {key}: {exc}") from exc

    # -- the orphan sweep -------------------------------------------------------------------

    async def stale(self, before: datetime) -> AsyncIterator[StoredItem]:
        try:
            async for item in self._stale_objects(before):
                yield item
            async for item in self._stale_uploads(before):
                yield item
        except self.failures as exc:
            raise StorageError(f"S3 listing of {self.where}: {exc}") from exc

    def _own_key(self, object_key: str) -> str | None:
        key = object_key[len(self.prefix) :]
        return key if object_key.startswith(self.prefix) and _KEY.match(key) else None

    async def _stale_objects(self, before: datetime) -> AsyncIterator[StoredItem]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        async for page in pages:
            for entry in page.get("Contents", []):
                key = self._own_key(entry["Key"])
                if key is not None and entry["LastModified"] < before:
                    yield StoredItem(key, entry["LastModified"])

    async def _stale_uploads(self, before: datetime) -> AsyncIterator[StoredItem]:
        """Multipart uploads (resumable ones and large writes) with no part since ``before``.
        A completed multipart object's ``LastModified`` is when its upload began, so an
        upload's age is its newest part's, not its start's."""
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        async for page in pages:
            for upload in page.get("Uploads", []):
                key = self._own_key(upload["Key"])
                if key is None or upload["Initiated"] >= before:
                    continue
                newest = await self._newest_part(upload["Key"], upload["UploadId"])
                modified = max(upload["Initiated"], newest or upload["Initiated"])
                if modified < before:
                    yield StoredItem(key, modified, partial=upload["UploadId"])

    async def _newest_part(self, object_key: str, upload_id: str) -> datetime | None:
        newest: datetime | None = None
        pages = self.client.get_paginator("list_parts").paginate(
            Bucket=self.bucket, Key=object_key, UploadId=upload_id
        )
        async for page in pages:
            for part in page.get("Parts", []):
                if newest is None or part["LastModified"] > newest:
                    newest = part["LastModified"]
        return newest


@hookimpl
def register_storage_backends() -> list[type[StorageBackend]]:
    return [S3Storage]
