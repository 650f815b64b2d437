"""``sinetti purge [--dry-run] [--json] [--orphans-older-than MINUTES]`` on a data directory:
counts, a dry run that deletes nothing, orphans by age, and bad arguments refused."""

from __future__ import annotations

import json
import os
import time

import pytest

from portal.cli import main

pytestmark = pytest.mark.usefixtures("restore_umask")


def orphan(migrated_data_dir, key: str, age_minutes: float):
    """A stored file no row names, last changed ``age_minutes`` ago."""
    path = migrated_data_dir / "files" / key[:2] / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"left behind by a crash")
    moment = time.time() - age_minutes * 60
    os.utime(path, (moment, moment))
    return path


def purge_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["purge", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_purge_deletes_orphans_older_than_an_hour_and_keeps_younger_ones(migrated_data_dir, capsys):
    old = orphan(migrated_data_dir, "ab" * 16, age_minutes=61)
    young = orphan(migrated_data_dir, "cd" * 16, age_minutes=30)

    counts = purge_json(capsys)

    assert counts["orphans"] == 1 and counts["dry_run"] is False
    assert not old.exists() and young.exists()


def test_a_dry_run_counts_and_deletes_nothing(migrated_data_dir, capsys):
    old = orphan(migrated_data_dir, "ab" * 16, age_minutes=120)

    counts = purge_json(capsys, "--dry-run")

    assert counts == {
        "dry_run": True,
        "messages": 0,
        "links": 0,
        "registrations": 0,
        "notifications": 0,
        "audit_events": 0,
        "orphans": 1,
    }
    assert old.exists()


def test_a_stopped_portal_may_sweep_younger_orphans(migrated_data_dir, capsys):
    young = orphan(migrated_data_dir, "cd" * 16, age_minutes=5)

    assert purge_json(capsys, "--orphans-older-than", "0")["orphans"] == 1
    assert not young.exists()


def test_the_text_report_names_each_count(migrated_data_dir, capsys):
    orphan(migrated_data_dir, "ab" * 16, age_minutes=120)

    assert main(["purge"]) == 0

    out = capsys.readouterr().out
    assert "Deleted 1 orphan stored object(s)." in out
    assert "Deleted 0 message(s) past their retention, with their files." in out
    assert "Deleted 0 expired draft(s)." in out


@pytest.mark.parametrize("minutes", ["-5", "soon", "1.5"])
def test_a_bad_age_is_refused_with_exit_2_and_no_traceback(migrated_data_dir, capsys, minutes):
    with pytest.raises(SystemExit) as stopped:
        main(["purge", "--orphans-older-than", minutes])

    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "not a whole number of minutes" in err and "Traceback" not in err
