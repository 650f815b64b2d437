"""The ``sinetti`` command: migrate, outbox, and configuration errors."""

from __future__ import annotations

import sqlite3

from portal.cli import main


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
