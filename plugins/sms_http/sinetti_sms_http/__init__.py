"""SMS gateway ``http``: POSTs each SMS as JSON to an HTTP(S) endpoint with httpx.

Settings: ``PORTAL_SMS_HTTP_URL`` (required when ``PORTAL_SMS=http``; an ``http://`` or
``https://`` URL), ``PORTAL_SMS_HTTP_TOKEN`` (optional; sent as
``Authorization: Bearer <token>``), ``PORTAL_SMS_HTTP_TIMEOUT`` (10 seconds).

The request body is ``{"to": "+358…", "text": "…"}`` (``application/json``, UTF-8). Any 2xx
answer means delivered. Any other answer, a timeout or a connection error is a temporary
failure that the outbox retries with back-off. The text carries a PIN: it is never logged
and never put in an error message.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import httpx

from portal.api import ConfigError, Settings, SmsDeliveryError, SmsGateway, hookimpl

EXCERPT_CHARS = 200


class HttpSmsGateway(SmsGateway):
    name = "http"
    settings_prefix = "SMS_HTTP_"
    known_options = frozenset({"url", "token", "timeout"})

    def __init__(self, settings: Settings, options: dict[str, str]) -> None:
        super().__init__(settings, options)
        self.url = self.option.text("url", required="when PORTAL_SMS=http")
        self.endpoint = _endpoint(self.url)
        self.timeout = self.option.positive_float("timeout", 10, unit="seconds")
        self.token = options.get("token") or None
        self._client: httpx.AsyncClient | None = None

    def _new_client(self) -> httpx.AsyncClient:
        headers = {"User-Agent": "sinetti-sms-http"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return httpx.AsyncClient(timeout=self.timeout, headers=headers, follow_redirects=False)

    async def open(self) -> None:
        if self._client is None:
            self._client = self._new_client()

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def send(self, to: str, text: str) -> None:
        if self._client is not None:
            await self._post(self._client, to, text)
            return
        async with self._new_client() as client:
            await self._post(client, to, text)

    async def _post(self, client: httpx.AsyncClient, to: str, text: str) -> None:
        body = json.dumps({"to": to, "text": text}, ensure_ascii=False).encode("utf-8")
        try:
            response = await client.post(
                self.url, content=body, headers={"Content-Type": "application/json"}
            )
        except httpx.TimeoutException as exc:
            raise SmsDeliveryError(
                f"SMS gateway {self.endpoint}: no answer within {self.timeout:g} s "
                f"({type(exc).__name__})"
            ) from exc
        except httpx.HTTPError as exc:
            raise SmsDeliveryError(
                f"SMS gateway {self.endpoint}: {type(exc).__name__}: {exc}"
            ) from exc
        if not response.is_success:
            raise SmsDeliveryError(
                f"SMS gateway {self.endpoint} answered {response.status_code}: "
                f"{_excerpt(response, text)}"
            )


def _endpoint(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: enough to name the gateway in errors and logs.

    The rest is left out because a gateway URL may carry a key in its path or query.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("PORTAL_SMS_HTTP_URL: expected an http:// or https:// URL")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def _excerpt(response: httpx.Response, text: str) -> str:
    """The start of the answer on one line, without the SMS text should the gateway echo it.

    The text, its JSON-escaped form and every run of four or more digits in it (the PIN) are
    cut out before the excerpt is shortened, so a partial echo does not reveal the PIN either.
    """
    answer = response.text[: EXCERPT_CHARS * 20]
    secrets = {
        text,
        json.dumps(text)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
        *re.findall(r"\d{4,}", text),
    }
    for secret in sorted(secrets, key=len, reverse=True):
        if secret.strip():
            answer = answer.replace(secret, "[…]")
    answer = " ".join(answer.split())
    if len(answer) > EXCERPT_CHARS:
        answer = answer[: EXCERPT_CHARS - 1] + "…"
    return answer or "(empty answer)"


@hookimpl
def register_sms_gateways() -> list[type[SmsGateway]]:
    return [HttpSmsGateway]
