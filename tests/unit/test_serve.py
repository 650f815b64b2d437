"""``sinetti serve`` as a real process: what it writes to its access log and to the disk."""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portal.testing import csrf_from, running_portal_server

LINK_TOKEN = "UGVyc29uYWxMaW5rVG9rZW5PZlRoaXJ0eUZvdXJCeXQ"
MESSAGE_TOKEN = "TWVzc2FnZVRva2VuT2ZGb3J0eVRocmVlQ2hhcmFjdGU"
REFERER_TOKEN = "UmVmZXJlclRva2VuV2hpY2hNdXN0TmV2ZXJCZUxvZ2c"


def wait_for(check: Callable[[], object], what: str) -> object:
    """``check()`` once it is truthy; the server works in processes of its own."""
    deadline = time.monotonic() + 30  # only gives up: a slow machine still passes
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {what}")
        time.sleep(0.05)
    return found


@contextlib.contextmanager
def lax_umask() -> Iterator[None]:
    """Start processes with the umask most systems hand down (0022): the portal must not
    depend on it."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def fetch(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def register(base_url: str, address: str) -> int:
    """The start page's form, as a browser without JavaScript posts it."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(base_url + "/", timeout=10) as page:
        csrf = csrf_from(page.read().decode())
    form = urllib.parse.urlencode({"email": address, "csrf_token": csrf}).encode()
    with opener.open(base_url + "/", data=form, timeout=10) as response:
        return int(response.status)


def test_access_log_shows_link_paths_without_their_tokens(mail, sms_gateway, tmp_path_factory):
    with running_portal_server(
        mail, sms_gateway, tmp_path_factory, name="accesslog", serve_args=["--access-log"]
    ) as server:
        statuses = [
            fetch(f"{server.url}/s/{LINK_TOKEN}"),
            fetch(
                f"{server.url}/m/{MESSAGE_TOKEN}/code?back=%2Fs%2F{LINK_TOKEN}",
                headers={"Referer": f"{server.url}/m/{REFERER_TOKEN}"},
            ),
            fetch(f"{server.url}/help"),
        ]

        def logged() -> str | None:
            log = server.log()
            return log if '"GET /help' in log else None

        log = str(wait_for(logged, "the access log line of /help"))

    assert statuses == [404, 404, 200]  # unknown links, but the path alone must not tell
    assert "GET /s/[redacted] 1.1" in log
    assert "GET /m/[redacted]/code 1.1" in log
    assert f"{server.url}/m/[redacted]" in log  # the referer
    for token in (LINK_TOKEN, MESSAGE_TOKEN, REFERER_TOKEN):
        assert token not in log


def modes(data_dir: Path) -> dict[str, int]:
    return {
        str(path.relative_to(data_dir.parent)): stat.S_IMODE(path.stat().st_mode)
        for path in [data_dir, *data_dir.rglob("*")]
    }


def test_data_directory_and_everything_in_it_is_the_portals_alone(
    mail, sms_gateway, tmp_path_factory
):
    with (
        lax_umask(),
        running_portal_server(
            mail, sms_gateway, tmp_path_factory, name="filemodes", extra_env={"PORTAL_MAIL": "dev"}
        ) as server,
    ):
        assert register(server.url, "liisa@example.com") == 200
        mailbox = server.data_dir / "devmailbox.jsonl"
        wait_for(mailbox.exists, "the registration mail in the development mailbox")
        found = modes(server.data_dir)  # while the server runs: SQLite's -wal/-shm too

    names = {Path(name).name for name in found}
    assert {"sinetti.sqlite3", "secret.key", "devmailbox.jsonl", "files", "tmp"} <= names
    readable_by_others = {name: f"{mode:o}" for name, mode in found.items() if mode & 0o077}
    assert readable_by_others == {}
    assert found[server.data_dir.name] == 0o700


def test_an_old_data_directory_open_to_others_is_closed_at_start_up(tmp_path, monkeypatch):
    from portal.cli import main

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    monkeypatch.setenv("PORTAL_DATA_DIR", str(data_dir))
    previous = os.umask(0o022)
    try:
        assert main(["migrate"]) == 0
        assert os.umask(0o022) == 0o077, "the command sets a private umask before anything"
    finally:
        os.umask(previous)

    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "sinetti.sqlite3").stat().st_mode) == 0o600


@pytest.fixture(autouse=True)
def keep_the_test_processs_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)
