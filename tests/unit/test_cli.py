"""The ``sinetti`` command: migrate, outbox, plugins, plugin commands, configuration errors."""

from __future__ import annotations

import argparse
import sqlite3
from importlib.metadata import version

import pytest

from portal import hookimpl
from portal.cli import main
from portal.clicommands import CliCommand
from portal.testing import builtin_plugins

# ``main`` sets the process's umask: the fixture gives the rest of the run its own back.
pytestmark = pytest.mark.usefixtures("restore_umask")


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


def test_plugins_lists_the_installed_plugins_with_version_and_what_each_provides(capsys):
    assert main(["plugins"]) == 0  # the built-in plugins, found through their entry points

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["PLUGIN", "DISTRIBUTION", "VERSION", "PROVIDES"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert list(rows) == sorted(rows)  # a stable order
    assert {"storage-local", "mail-smtp", "devbox", "theme-valtori"} <= set(rows)
    assert rows["devbox"].split()[1:3] == ["sinetti-devbox", version("sinetti-devbox")]
    assert rows["devbox"].endswith(
        "mail: dev; sms: dev; blueprints: devbox; translations: devbox (en, fi, sv)"
    )
    assert rows["storage-local"].endswith("storage: local")
    assert rows["theme-valtori"].endswith("themes: valtori")
    assert rows["verification-basic"].endswith(
        "verification: none, sms-pin; translations: verification-basic (en, fi, sv)"
    )
    # The core's own rules, which plugins may take over (portal.builtin_rules).
    assert rows["sinetti-core"].split()[1:3] == ["sinetti", version("sinetti")]
    assert rows["sinetti-core"].endswith(
        "sign-in: email-link; rules: recipient_policy, choose_verification"
    )


class SenderCount:
    """A plugin with a command that reads the database through the ORM, in the app context."""

    @hookimpl
    def register_cli_commands(self) -> list[CliCommand]:
        return [
            CliCommand(
                name="count-senders",
                help="print how many senders have registered",
                configure=lambda parser: parser.add_argument("--domain", default=""),
                run=self.count,
            )
        ]

    async def count(self, args: argparse.Namespace) -> int:
        from portal.context import portal
        from portal.models import Sender

        senders = Sender.filter(email__endswith=args.domain)
        print(f"{await senders.count()} sender(s) in {portal().settings.data_dir.name}")
        return 3


class Clash:
    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def register_cli_commands(self) -> list[CliCommand]:
        return [CliCommand(name=self.name, help="clashes", run=lambda args: 0)]


def test_hook_register_cli_commands_runs_a_plugin_command_with_the_database_connected(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    main(["migrate"])
    with sqlite3.connect(tmp_path / "sinetti.sqlite3") as db:
        for email in ("a@example.com", "b@example.com", "c@valtori.fi"):
            db.execute(
                "INSERT INTO sender (email, created_at) VALUES (?, '2026-12-01 00:00:00+00:00')",
                (email,),
            )
    plugins = [*builtin_plugins(), SenderCount()]
    capsys.readouterr()

    assert main(["count-senders", "--domain", "@example.com"], plugins=plugins) == 3
    assert main(["count-senders"], plugins=plugins) == 3  # the first run closed what it opened

    assert capsys.readouterr().out.splitlines() == [
        f"2 sender(s) in {tmp_path.name}",
        f"3 sender(s) in {tmp_path.name}",
    ]


def test_hook_register_cli_commands_shows_the_command_in_help(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"], plugins=[*builtin_plugins(), SenderCount()])

    assert exited.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "count-senders print how many senders have registered" in help_text


def test_plugins_lists_the_commands_a_plugin_adds(capsys):
    assert main(["plugins"], plugins=[*builtin_plugins(), SenderCount()]) == 0

    (row,) = [line for line in capsys.readouterr().out.splitlines() if "commands:" in line]
    assert row.split()[1:] == ["-", "-", "commands:", "count-senders"]  # registered directly


def test_plugin_command_named_like_a_core_command_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))

    assert main(["migrate"], plugins=[*builtin_plugins(), Clash("migrate")]) == 2

    assert "adds the command 'migrate', which the core already has" in capsys.readouterr().err
    assert not (tmp_path / "sinetti.sqlite3").exists()  # nothing ran


def test_two_plugins_adding_the_same_command_exit_2_naming_both(capsys):
    first, second = Clash("export"), Clash("export")

    assert main(["plugins"], plugins=[*builtin_plugins(), first, second]) == 2

    err = capsys.readouterr().err
    assert "sinetti: the plugin " in err
    assert "adds the command 'export', which the plugin " in err and " already has" in err
