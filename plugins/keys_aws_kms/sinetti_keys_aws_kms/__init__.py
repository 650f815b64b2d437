"""Key provider ``aws-kms``: each message's data key is made and unwrapped by AWS KMS (or a
KMS-compatible service); the key-encryption key never leaves the KMS.

Settings (``PORTAL_KEYS=aws-kms``):

- ``PORTAL_KMS_KEY_ID``: the KMS key (id, ARN or ``alias/…``) that wraps new data keys
  (required). To rotate, name a new key here (keep the old one enabled in KMS) and run
  ``sinetti keys rotate``: KMS re-encrypts each wrapped key without showing it to the portal.
- ``PORTAL_KMS_ENDPOINT_URL``: another KMS service; empty for AWS.
- ``PORTAL_KMS_REGION``, ``PORTAL_KMS_ACCESS_KEY_ID`` / ``PORTAL_KMS_SECRET_ACCESS_KEY`` (both
  or neither; without them the standard AWS credential chain applies).

The message is the KMS *encryption context* of its key, so KMS itself refuses to unwrap a key
for another message, and CloudTrail logs name the message whose key was used.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from portal.api import (
    ConfigError,
    DataKey,
    KeyProvider,
    KeyUnavailable,
    Settings,
    UnwrapError,
    WrappedKey,
    hookimpl,
)

BASE_FAILURES: tuple[type[BaseException], ...] = (BotoCoreError, TimeoutError)


def _context(context: bytes) -> dict[str, str]:
    return {"sinetti": context.decode("ascii")}


class KmsKeyProvider(KeyProvider):
    name = "aws-kms"
    settings_prefix = "KMS_"
    known_options: ClassVar[frozenset[str] | None] = frozenset(
        {"key_id", "endpoint_url", "region", "access_key_id", "secret_access_key"}
    )

    def __init__(self, settings: Settings, options: dict[str, str]) -> None:
        super().__init__(settings, options)
        self.key_id = self.option.text("key_id", required="when PORTAL_KEYS=aws-kms")
        self.endpoint_url = self.option.text("endpoint_url") or None
        if self.endpoint_url and not self.endpoint_url.startswith(("http://", "https://")):
            raise ConfigError("PORTAL_KMS_ENDPOINT_URL: expected an http(s) URL")
        self.region = self.option.text("region") or None
        self.access_key_id = self.option.text("access_key_id") or None
        self.secret_access_key = self.option.text("secret_access_key") or None
        if bool(self.access_key_id) != bool(self.secret_access_key):
            raise ConfigError(
                "PORTAL_KMS_ACCESS_KEY_ID / PORTAL_KMS_SECRET_ACCESS_KEY: set both or neither"
            )
        self.failures: tuple[type[BaseException], ...] = BASE_FAILURES
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None
        self._current = ""

    @property
    def client(self) -> Any:
        if self._client is None:
            raise KeyUnavailable("the KMS key provider is not open")
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
        config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10)
        stack = contextlib.AsyncExitStack()
        try:
            self._client = await stack.enter_async_context(
                session.client("kms", endpoint_url=self.endpoint_url, config=config)
            )
            described = await self._client.describe_key(KeyId=self.key_id)
        except BaseException as exc:
            self._client = None
            await stack.aclose()
            if isinstance(exc, (ClientError, *self.failures)):
                raise KeyUnavailable(f"KMS key {self.key_id}: {exc}") from exc
            raise
        self._stack = stack
        self._current = str(described["KeyMetadata"]["Arn"])

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    @property
    def current_kek_id(self) -> str:
        if not self._current:
            raise KeyUnavailable("the KMS key provider is not open")
        return self._current

    async def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = await getattr(self.client, operation)(**request)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("InvalidCiphertextException", "IncorrectKeyException"):
                raise UnwrapError(f"KMS {operation}: {code}") from exc
            raise KeyUnavailable(f"KMS {operation}: {code or exc}") from exc
        except self.failures as exc:
            raise KeyUnavailable(f"KMS {operation}: {exc}") from exc
        return response

    async def new_key(self, context: bytes) -> DataKey:
        made = await self._call(
            "generate_data_key",
            KeyId=self.current_kek_id,
            KeySpec="AES_256",
            EncryptionContext=_context(context),
        )
        wrapped = WrappedKey(str(made["KeyId"]), bytes(made["CiphertextBlob"]))
        return DataKey(bytes(made["Plaintext"]), wrapped)

    async def wrap(self, plain: bytes, context: bytes) -> WrappedKey:
        made = await self._call(
            "encrypt",
            KeyId=self.current_kek_id,
            Plaintext=plain,
            EncryptionContext=_context(context),
        )
        return WrappedKey(str(made["KeyId"]), bytes(made["CiphertextBlob"]))

    async def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        opened = await self._call(
            "decrypt",
            CiphertextBlob=wrapped.blob,
            KeyId=wrapped.kek_id,
            EncryptionContext=_context(context),
        )
        return bytes(opened["Plaintext"])

    async def rewrap(self, wrapped: WrappedKey, context: bytes) -> WrappedKey:
        made = await self._call(
            "re_encrypt",
            CiphertextBlob=wrapped.blob,
            SourceKeyId=wrapped.kek_id,
            SourceEncryptionContext=_context(context),
            DestinationKeyId=self.current_kek_id,
            DestinationEncryptionContext=_context(context),
        )
        return WrappedKey(str(made["KeyId"]), bytes(made["CiphertextBlob"]))


@hookimpl
def register_key_providers() -> list[type[KeyProvider]]:
    return [KmsKeyProvider]
