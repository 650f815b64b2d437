"""The ``http`` SMS gateway (plugins/sms_http) against a real HTTP server on loopback."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sinetti_sms_http import HttpSmsGateway

from portal.app import create_app
from portal.config import ConfigError
from portal.models import OutboxItem, OutboxStatus
from portal.services import clock, outbox
from portal.sms.base import SmsDeliveryError
from portal.testing import builtin_plugins, free_port

from ..helpers import plain_settings

NUMBER = "+358400123456"
PIN = "482913"
TEXT = f"Sinetti: tunnusluku {PIN} – älä kerro sitä kenellekään."


@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    client_port: int

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (the timeout test) is expected; print no traceback."""


class SmsServer:
    """A real HTTP server on 127.0.0.1 that records each request and answers as told."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status = 200
        self.answer = b'{"id": "msg-1"}'
        self.echo = False  # answer with the request body (a gateway quoting what it got)
        self.delay = 0.0
        self.stopping = threading.Event()
        self.httpd = QuietServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/sms"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse can be seen

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                server.requests.append(Received(self.path, headers, body, self.client_address[1]))
                if server.delay:
                    server.stopping.wait(server.delay)
                answer = body if server.echo else server.answer
                self.send_response(server.status)
                if server.status != 204:
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                if server.status != 204:
                    self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> None:
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def sms_server() -> Iterator[SmsServer]:
    server = SmsServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def gateway(tmp_path, **options: str) -> HttpSmsGateway:
    return HttpSmsGateway(plain_settings(tmp_path), options)


# -- what is sent ---------------------------------------------------------------------------


async def test_sms_is_posted_as_utf8_json_with_the_bearer_token(tmp_path, sms_server):
    await gateway(tmp_path, url=sms_server.url, token="s3cret-token").send(NUMBER, TEXT)

    (request,) = sms_server.requests
    assert request.path == "/api/sms"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer s3cret-token"
    assert "älä".encode() in request.body  # UTF-8 as such, not \u escapes
    assert request.json() == {"to": NUMBER, "text": TEXT}


async def test_no_authorization_header_is_sent_without_a_token(tmp_path, sms_server):
    await gateway(tmp_path, url=sms_server.url).send(NUMBER, TEXT)

    (request,) = sms_server.requests
    assert "authorization" not in request.headers


@pytest.mark.parametrize("status", [200, 202, 204])
async def test_any_2xx_answer_counts_as_delivered(tmp_path, sms_server, status):
    sms_server.status = status

    await gateway(tmp_path, url=sms_server.url).send(NUMBER, TEXT)

    assert len(sms_server.requests) == 1


async def test_opened_gateway_reuses_one_connection_and_still_sends_after_close(
    tmp_path, sms_server
):
    sms = gateway(tmp_path, url=sms_server.url)

    await sms.open()
    await sms.send(NUMBER, TEXT)
    await sms.send(NUMBER, TEXT)
    await sms.close()
    await sms.send(NUMBER, TEXT)  # without open: a short-lived client of its own

    first, second, after_close = sms_server.requests
    assert first.client_port == second.client_port
    assert after_close.client_port != first.client_port


# -- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 429, 503, 400])
async def test_error_answer_is_retryable_and_names_the_status_but_not_the_text(
    tmp_path, sms_server, status
):
    sms_server.status = status
    sms_server.answer = b'{"error": "gateway busy"}'

    with pytest.raises(SmsDeliveryError) as error:
        await gateway(tmp_path, url=sms_server.url).send(NUMBER, TEXT)

    message = str(error.value)
    assert error.value.permanent is False
    assert f"answered {status}" in message
    assert "gateway busy" in message
    assert TEXT not in message
    assert PIN not in message


async def test_gateway_echoing_the_sms_does_not_bring_the_pin_into_the_error(tmp_path, sms_server):
    sms_server.status = 400
    sms_server.echo = True

    with pytest.raises(SmsDeliveryError) as error:
        await gateway(tmp_path, url=sms_server.url).send(NUMBER, f'PIN {PIN}\n"quoted" ä')

    message = str(error.value)
    assert "400" in message
    assert PIN not in message
    assert "quoted" not in message


async def test_long_error_answer_is_cut_to_200_characters(tmp_path, sms_server):
    sms_server.status = 502
    sms_server.answer = b"<html>" + b"x" * 5000 + b"</html>"

    with pytest.raises(SmsDeliveryError) as error:
        await gateway(tmp_path, url=sms_server.url).send(NUMBER, TEXT)

    excerpt = str(error.value).split("answered 502: ", 1)[1]
    assert excerpt.startswith("<html>xxx")
    assert len(excerpt) == 200


async def test_no_answer_within_the_timeout_is_a_retryable_error(tmp_path, sms_server):
    sms_server.delay = 2.0
    sms = gateway(tmp_path, url=sms_server.url, timeout="0.2")

    started = time.monotonic()
    with pytest.raises(SmsDeliveryError) as error:
        await sms.send(NUMBER, TEXT)

    assert time.monotonic() - started < 1.5
    assert error.value.permanent is False
    assert "no answer within 0.2 s" in str(error.value)
    assert PIN not in str(error.value)


async def test_connection_refused_is_a_retryable_error(tmp_path):
    port = free_port()  # nobody listens here
    sms = gateway(tmp_path, url=f"http://127.0.0.1:{port}/api/sms", timeout="5")

    with pytest.raises(SmsDeliveryError) as error:
        await sms.send(NUMBER, TEXT)

    assert error.value.permanent is False
    assert f"127.0.0.1:{port}" in str(error.value)
    assert PIN not in str(error.value)


# -- configuration --------------------------------------------------------------------------


def test_defaults(tmp_path):
    sms = gateway(tmp_path, url="https://sms.example.fi/send")

    assert (sms.timeout, sms.token) == (10.0, None)


def test_missing_url_names_its_variable(tmp_path):
    with pytest.raises(ConfigError, match=r"^PORTAL_SMS_HTTP_URL: required"):
        gateway(tmp_path)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://sms.example.fi/send",
        "sms.example.fi/send",
        "http://",
        "https://sms.example.fi:port/send",
        "file:///etc/passwd",
    ],
)
def test_url_that_is_not_http_names_its_variable_but_not_its_value(tmp_path, url):
    with pytest.raises(ConfigError, match=r"^PORTAL_SMS_HTTP_URL: expected") as error:
        gateway(tmp_path, url=url + "?key=TOPSECRET")

    assert "TOPSECRET" not in str(error.value)


@pytest.mark.parametrize("timeout", ["soon", "0", "-1", "nan", "inf", ""])
def test_bad_timeout_names_its_variable(tmp_path, timeout):
    with pytest.raises(ConfigError, match=r"^PORTAL_SMS_HTTP_TIMEOUT: expected"):
        gateway(tmp_path, url="https://sms.example.fi/send", timeout=timeout)


def test_url_is_required_only_when_the_http_gateway_is_selected(portal_config):
    create_app({**portal_config, "sms": "dev"}, plugins=builtin_plugins())

    with pytest.raises(ConfigError, match=r"^PORTAL_SMS_HTTP_URL: required"):
        create_app({**portal_config, "sms": "http"}, plugins=builtin_plugins())


def test_misspelled_variable_stops_start_up_even_when_http_is_not_selected(portal_config):
    config = {**portal_config, "sms": "dev", "plugin_options": {"SMS_HTTP_TOKN": "x"}}

    with pytest.raises(ConfigError, match=r"^PORTAL_SMS_HTTP_TOKN: unknown setting of the 'http'"):
        create_app(config, plugins=builtin_plugins())


# -- through the portal's outbox ------------------------------------------------------------


class TestThroughTheOutbox:
    @pytest.fixture
    def portal_config(self, portal_config, sms_server):
        return {
            **portal_config,
            "sms": "http",
            "plugin_options": {"SMS_HTTP_URL": sms_server.url, "SMS_HTTP_TIMEOUT": "5"},
            # The background worker runs once at start-up; the test drives delivery itself.
            "outbox_poll_seconds": 3600,
        }

    async def test_gateway_outage_keeps_the_sms_pending_and_a_later_retry_sends_it(
        self, portal_app, sms_server, moved_clock
    ):
        providers = portal_app.app.extensions["sinetti"].providers
        assert isinstance(providers.sms, HttpSmsGateway)
        async with portal_app.app.app_context():  # the outbox seals with the app's secret key
            item = await outbox.enqueue_sms(NUMBER, f"PIN {PIN}")
            sms_server.status = 503

            assert await outbox.deliver_due(providers.mail, providers.sms, 5) == 0

            await item.refresh_from_db()
            assert item.status is OutboxStatus.PENDING
            assert item.attempts == 1
            assert "503" in item.last_error
            assert PIN not in item.last_error
            assert item.next_attempt_at > clock.now()
            assert outbox.opened_text(item) == f"PIN {PIN}"  # nothing lost while waiting
            assert PIN not in item.text  # but sealed

            sms_server.status = 200
            moved_clock.advance(hours=1)

            assert await outbox.deliver_due(providers.mail, providers.sms, 5) == 1

        item = await OutboxItem.get(id=item.id)
        assert item.status is OutboxStatus.SENT
        assert item.attempts == 2
        assert item.text == ""
        assert [request.json() for request in sms_server.requests] == [
            {"to": NUMBER, "text": f"PIN {PIN}"}
        ] * 2
