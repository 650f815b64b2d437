"""The ``sinetti`` command: migrate, outbox, and configuration errors."""

from __future__ import annotations

import os
import sqlite3

import pytest

from portal.cli import main


@pytest.fixture(autouse=True)
def restore_umask():
    """``main`` sets the process's umask (0077): give the rest of the test run its own back."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


def test_migrate_creates_the_database(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))

    assert main(["migrate"]) == 0
    assert main(["migrate"]) == 0  # a second run has nothing to do

    with sqlite3.connect(tmp_path / "sinetti.sqlite3") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"sender", "sender_link", "message", "recipient", "attachment", "outbox_item"} <= tables
    assert "Database is up to date." in capsys.readouterr().out


def test_outbox_reports_counts_per_status(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    main(["migrate"])

    assert main(["outbox"]) == 0

    out = capsys.readouterr().out
    assert "pending: 0" in out and "sent: 0" in out and "failed: 0" in out


def test_configuration_error_exits_2_naming_the_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PORTAL_DEFAULT_LOCALE", "de")

    assert main(["migrate"]) == 2

    assert "configuration error: PORTAL_DEFAULT_LOCALE" in capsys.readouterr().err
    assert not (tmp_path / "sinetti.sqlite3").exists()


def test_cleanup_aborts_uploads_abandoned_longer_than_configured(tmp_path, monkeypatch, capsys):
    from datetime import UTC, datetime, timedelta

    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PORTAL_UPLOAD_ABANDON_HOURS", "2")
    main(["migrate"])
    part = tmp_path / "files" / "tmp" / ("ab" * 20 + ".upload")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"half a file")
    stale = (datetime.now(UTC) - timedelta(hours=3)).isoformat(sep=" ")  # as tortoise writes
    with sqlite3.connect(tmp_path / "sinetti.sqlite3") as db:
        db.execute("INSERT INTO sender (email, created_at) VALUES ('a@example.com', ?)", (stale,))
        db.execute(
            "INSERT INTO message (id, sender_id, status, subject, body, signature, read_receipt,"
            " recipients_text, locale, created_at, inflight_bytes) VALUES"
            " ('6f1b6c44-0d5e-4a36-9a55-2d1d9b1c1a11', 1, 'draft', '', '', '', 0, '', 'fi', ?, 0)",
            (stale,),
        )
        db.execute(
            "INSERT INTO upload (id, message_id, filename, content_type, fingerprint, size,"
            " received, chunk_size, storage_key, backend_upload_id, part_tags, crc32, created_at,"
            " updated_at) VALUES ('0b0f1d7e-3a0c-4a8e-8f7e-1e2d3c4b5a69',"
            " '6f1b6c44-0d5e-4a36-9a55-2d1d9b1c1a11', 'f', 'x', 'fp', 100, 11, 8388608, ?, ?,"
            " '[]', 0, ?, ?)",
            ("ab" * 20, part.name, stale, stale),
        )

    assert main(["cleanup"]) == 0

    assert "Cleaned up 1 abandoned upload(s)." in capsys.readouterr().out
    assert not part.exists()
    with sqlite3.connect(tmp_path / "sinetti.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM upload").fetchone() == (0,)
