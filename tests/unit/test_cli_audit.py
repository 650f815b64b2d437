"""``sinetti audit export [--message ID] [--since] [--until] [--output FILE]``: the audit
trail as JSON Lines, filtered, streamed in batches; bad arguments exit 2 with a clear line."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import pytest
from tortoise import Tortoise

from portal import db
from portal.cli import main
from portal.config import load_settings
from portal.services import audit

# ``main`` sets the process's umask: the fixture gives the rest of the run its own back.
pytestmark = pytest.mark.usefixtures("restore_umask")

FIRST, SECOND = uuid.uuid4(), uuid.uuid4()
# In Helsinki (UTC+2 in winter): 29 Nov 23:30, 30 Nov 00:30, 30 Nov 23:59, 1 Dec 00:00.
TIMES = [
    datetime(2026, 11, 29, 21, 30, tzinfo=UTC),
    datetime(2026, 11, 29, 22, 30, tzinfo=UTC),
    datetime(2026, 11, 30, 21, 59, tzinfo=UTC),
    datetime(2026, 11, 30, 22, 0, tzinfo=UTC),
]


@pytest.fixture
def portal_env(tmp_path, monkeypatch, portal_database):
    """A migrated database (SQLite, or PostgreSQL with ``SINETTI_TEST_DATABASE_URL``)."""
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PORTAL_DATABASE_URL", portal_database)
    monkeypatch.setenv("PORTAL_TIMEZONE", "Europe/Helsinki")
    assert main(["migrate"]) == 0


def seed(*events: tuple[datetime, uuid.UUID | None, str]) -> None:
    """Record events (time, message, event) through the service, as the portal does."""

    async def run() -> None:
        await db.connect(load_settings())
        try:
            for at, message_id, event in events:
                await audit.record(
                    event, message_id=message_id, sender_id=7, actor="recipient 3", at=at, size=12
                )
        finally:
            await Tortoise.close_connections()

    asyncio.run(run())


@pytest.fixture
def trail(portal_env):
    seed(
        (TIMES[0], FIRST, "sent"),
        (TIMES[1], SECOND, "sent"),
        (TIMES[2], FIRST, "opened"),
        (TIMES[3], FIRST, "downloaded"),
    )


def exported(capsys, *args: str) -> list[dict]:
    assert main(["audit", "export", *args]) == 0
    captured = capsys.readouterr()
    return [json.loads(line) for line in captured.out.splitlines()]


def test_export_writes_every_event_as_one_json_line_in_order(trail, capsys):
    assert main(["audit", "export"]) == 0

    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["event"] for line in lines] == ["sent", "sent", "opened", "downloaded"]
    assert [line["id"] for line in lines] == sorted(line["id"] for line in lines)
    assert lines[0] == {
        "id": lines[0]["id"],
        "at": "2026-11-29T21:30:00Z",
        "event": "sent",
        "message_id": str(FIRST),
        "sender_id": 7,
        "actor": "recipient 3",
        "client_ip": None,
        "detail": {"size": 12},
    }
    assert "Exported 4 audit event(s)." in captured.err


def test_message_filter_exports_only_that_messages_events(trail, capsys):
    lines = exported(capsys, "--message", str(SECOND))

    assert [(line["message_id"], line["event"]) for line in lines] == [(str(SECOND), "sent")]


def test_since_and_until_dates_are_whole_days_in_the_portals_timezone(trail, capsys):
    lines = exported(capsys, "--since", "2026-11-30", "--until", "2026-11-30")

    assert [line["at"] for line in lines] == ["2026-11-29T22:30:00Z", "2026-11-30T21:59:00Z"]


def test_times_with_an_offset_are_taken_as_written(trail, capsys):
    lines = exported(capsys, "--since", "2026-11-29T22:30:00+00:00", "--until", "2026-11-30T22:00Z")

    assert [line["event"] for line in lines] == ["sent", "opened"]


def test_output_writes_the_lines_to_a_file_and_nothing_to_stdout(trail, tmp_path, capsys):
    target = tmp_path / "audit.jsonl"

    assert main(["audit", "export", "--output", str(target), "--message", str(FIRST)]) == 0

    assert capsys.readouterr().out == ""
    events = [json.loads(line)["event"] for line in target.read_text("utf-8").splitlines()]
    assert events == ["sent", "opened", "downloaded"]


def test_export_reads_in_batches_and_loses_nothing(trail, capsys, monkeypatch):
    monkeypatch.setattr(audit, "EXPORT_BATCH", 3)
    seed(*((TIMES[3], FIRST, "opened") for _ in range(4)))  # 8 events: batches of 3, 3, 2

    lines = exported(capsys)

    assert len(lines) == 8
    assert [line["id"] for line in lines] == sorted({line["id"] for line in lines})


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--since", "30.11.2026"], "not a date or time (ISO 8601, like 2026-11-30): '30.11.2026'"),
        (["--until", "2026-13-01"], "not a date or time"),
        (["--message", "not-an-id"], "--message: not a message id: not-an-id"),
        (["--since", "2026-12-01", "--until", "2026-11-30"], "--since must be before --until"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_line_and_no_traceback(portal_env, capsys, args, error):
    assert main(["audit", "export", *args]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"sinetti audit export: {error}" in captured.err
    assert "Traceback" not in captured.err


def test_an_output_file_that_cannot_be_written_exits_2(portal_env, tmp_path, capsys):
    target = tmp_path / "missing" / "audit.jsonl"

    assert main(["audit", "export", "--output", str(target)]) == 2

    assert f"cannot write {target}" in capsys.readouterr().err


def test_audit_without_an_action_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["audit"])

    assert exited.value.code == 2
    assert "export" in capsys.readouterr().err
