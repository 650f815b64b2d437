"""``sinetti serve | migrate | outbox [retry] | cleanup | purge | verify-receipt | plugins``,
and the commands of plugins.

Plugins are loaded (through the ``sinetti`` entry points) before the arguments are parsed, so
that their commands (the ``register_cli_commands`` hook) appear in ``sinetti --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from portal import filemodes
from portal.clicommands import (
    CliCommand,
    CommandClash,
    format_inventory,
    inventory,
    plugin_commands,
)
from portal.config import ConfigError, load_settings
from portal.plugins import make_plugin_manager

if TYPE_CHECKING:
    from datetime import datetime, tzinfo

    import pluggy
    from quart import Quart

T = TypeVar("T")


def _serve(args: argparse.Namespace) -> int:
    from hypercorn.config import Config
    from hypercorn.run import run

    from portal.accesslog import RedactingLogger
    from portal.app import create_app

    # Links in e-mails point at this server unless the public address is configured.
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host  # noqa: S104
    os.environ.setdefault("PORTAL_BASE_URL", f"http://{host}:{args.port}")
    app = create_app()  # validate the configuration and plugins before starting any worker
    filemodes.tighten_data_dir(app.extensions["sinetti"].settings.data_dir)
    if not args.no_migrate:
        _migrate(args)
    config = Config()
    config.application_path = "portal.asgi:app"
    config.bind = [f"{args.host}:{args.port}"]
    config.workers = args.workers
    config.accesslog = "-" if args.access_log else None
    config.logger_class = RedactingLogger  # no personal-link or message tokens in the log
    config.errorlog = "-"
    config.h11_max_incomplete_size = 64 * 1024
    config.keep_alive_timeout = 75
    print(f"Sinetti is listening on http://{args.host}:{args.port}/", flush=True)
    return run(config)


def _migrate(args: argparse.Namespace) -> int:
    from portal import db

    settings = load_settings()
    filemodes.tighten_data_dir(settings.data_dir)
    asyncio.run(db.migrate(settings))
    print("Database is up to date.", flush=True)
    return 0


async def _on_database(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` with the database connected (and closed again): no app, no plugins."""
    from tortoise import Tortoise

    from portal import db

    await db.connect(load_settings())
    try:
        return await work()
    finally:
        await Tortoise.close_connections()


def _outbox(args: argparse.Namespace) -> int:
    """``sinetti outbox [--json]``: counts per status (and lane), the failed items."""
    import json

    from portal.services import outbox, outbox_admin

    async def report() -> None:
        summary = await outbox_admin.report()
        if args.json:
            print(json.dumps(summary, indent=2, sort_keys=True))
            return
        for status in ("pending", "sent", "failed"):
            lanes = ", ".join(f"{name} {lane[status]}" for name, lane in summary["lanes"].items())
            print(f"{status}: {summary[status]} ({lanes})")
        if summary["oldest_pending_seconds"] is not None:
            print(f"oldest pending: {summary['oldest_pending_seconds']} s")
        for item in await outbox_admin.failed_items():
            retry = "" if item.text else " (cannot be retried)"
            to = outbox.shown_address(item, load_settings().secret_key)
            print(f"failed #{item.id} {item.channel} to {to}{retry}: {item.last_error}")

    asyncio.run(_on_database(report))
    return 0


def _scans(args: argparse.Namespace) -> int:
    """``sinetti scans [--json]``: messages per malware-check state, the ones waiting with
    their failed attempts and last error; exit 1 when one has failed attempts (alerting)."""
    import json

    from portal.services import scanning

    summary = asyncio.run(_on_database(scanning.report))
    waiting = summary["waiting"]
    assert isinstance(waiting, list)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        print(
            ", ".join(f"{state}: {summary[state]}" for state in ("checking", "clean", "infected"))
        )
        for row in waiting:
            error = f": {row['last_error']}" if row["last_error"] else ""
            print(
                f"waiting {row['message']} (sent {row['sent_at']}), "
                f"{row['attempts']} failed attempt(s){error}"
            )
    return 1 if any(row["attempts"] for row in waiting) else 0


def _outbox_retry(args: argparse.Namespace) -> int:
    """``sinetti outbox retry --all | ID…``: queue failed items again (exit 1 if an ID was not
    a failed item that can be retried)."""
    from portal.services import outbox_admin

    if args.all == bool(args.ids):
        print("sinetti outbox retry: give --all or the IDs of failed items", file=sys.stderr)
        return 2
    retried = asyncio.run(_on_database(lambda: outbox_admin.retry(None if args.all else args.ids)))
    if retried:
        print("Queued again: " + ", ".join(f"#{item_id}" for item_id in retried))
    else:
        print("Nothing to retry.")
    missing = [item_id for item_id in args.ids if item_id not in retried]
    for item_id in missing:
        print(
            f"#{item_id}: not a failed item that can be retried (unknown, not failed, or its"
            " text is gone)",
            file=sys.stderr,
        )
    return 1 if missing else 0


async def _with_app(plugins: Sequence[object] | None, work: Callable[[Quart], Awaitable[T]]) -> T:
    """Run ``work`` as the services expect to be run: the app made, the database connected,
    the storage open and inside the app context; all closed again afterwards."""
    from tortoise import Tortoise

    from portal import db
    from portal.app import create_app

    app = create_app(plugins=plugins)
    portal = app.extensions["sinetti"]
    await db.connect(portal.settings)
    try:
        opened = [portal.providers.storage, portal.providers.keys]
        for provider in opened:
            await provider.open()
        try:
            async with app.app_context():  # the services read the app's state and settings
                return await work(app)
        finally:
            for provider in reversed(opened):
                await provider.close()
    finally:
        await Tortoise.close_connections()


def _cleanup(plugins: Sequence[object] | None, args: argparse.Namespace) -> int:
    from portal.services import housekeeping

    async def clean(app: Quart) -> None:
        portal = app.extensions["sinetti"]
        cleaned = await housekeeping.clean_up(portal.settings, portal.providers.storage)
        print(f"Cleaned up {cleaned.uploads} abandoned upload(s).")
        print(f"Deleted {cleaned.drafts} expired draft(s).")
        print(f"Ended {cleaned.sessions} expired session(s).")

    asyncio.run(_with_app(plugins, clean))
    return 0


def _purge(plugins: Sequence[object] | None, args: argparse.Namespace) -> int:
    """``sinetti purge [--dry-run] [--json]``: delete what is due now (drafts and uploads as
    ``cleanup`` does, then sent messages past their retention, old links and logs, orphans)."""
    import json
    from datetime import timedelta

    from portal.services import housekeeping, purge

    age = timedelta(minutes=args.orphans_older_than)

    async def run(app: Quart) -> dict[str, int]:
        portal = app.extensions["sinetti"]
        storage = portal.providers.storage
        if args.dry_run:
            due = await purge.purge(portal.settings, storage, dry_run=True, orphan_age=age)
            return due.as_dict()
        cleaned = await housekeeping.clean_up(portal.settings, storage)
        purged = await purge.purge(portal.settings, storage, orphan_age=age)
        return {"drafts": cleaned.drafts, "uploads": cleaned.uploads, **purged.as_dict()}

    counts = asyncio.run(_with_app(plugins, run))
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, **counts}, indent=2, sort_keys=True))
        return 0
    verb = "Would delete" if args.dry_run else "Deleted"
    for what, count in counts.items():
        print(f"{verb} {count} {PURGE_WORDS[what]}.")
    return 0


def _keys(plugins: Sequence[object] | None, args: argparse.Namespace) -> int:
    """``sinetti keys rotate [--new-key]``: re-wrap every data key under the current
    key-encryption key (first making a new one with ``--new-key``); ``sinetti keys status``."""
    from portal.keys.base import KeyUnavailable
    from portal.services import message_keys

    async def run(app: Quart) -> int:
        keys = app.extensions["sinetti"].providers.keys
        if args.keys_action == "status":
            for kek_id, count in await message_keys.counts_by_kek():
                mark = " (current)" if kek_id == keys.current_kek_id else ""
                print(f"{kek_id}{mark}: {count} data key(s)")
            return 0
        if args.new_key:
            try:
                print(f"New key-encryption key {keys.add_key()} wraps from now on.")
            except KeyUnavailable as error:
                print(f"sinetti keys rotate: {error}", file=sys.stderr)
                return 2
        done = await message_keys.rotate(batch=args.batch)
        print(f"Re-wrapped {done.rewrapped} data key(s); {done.left} left under older keys.")
        return 0 if done.left == 0 else 1

    return asyncio.run(_with_app(plugins, run))


def _minutes(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a whole number of minutes: {text!r}")
    return int(text)


#: How ``sinetti purge`` names what it counts.
PURGE_WORDS = {
    "drafts": "expired draft(s)",
    "uploads": "abandoned upload(s)",
    "messages": "message(s) past their retention, with their files",
    "links": "unused personal link(s)",
    "registrations": "registration log entries",
    "notifications": "delivered or failed notification(s)",
    "audit_events": "audit event(s) past their retention",
    "orphans": "orphan stored object(s)",
}


def _moment(text: str, tz: tzinfo, *, end_of_day: bool = False) -> datetime:
    """``2026-11-30`` (the start of that day, or with ``end_of_day`` the start of the next)
    or ``2026-11-30T12:00[+02:00]``, in ``tz`` unless it names an offset."""
    from datetime import date, datetime, time, timedelta

    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            pass
        else:
            return datetime.combine(day + timedelta(days=int(end_of_day)), time(), tz)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date or time (ISO 8601, like 2026-11-30): {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def _audit_export(args: argparse.Namespace) -> int:
    """``sinetti audit export``: the audit trail as JSON Lines (exit 2 for bad arguments)."""
    import uuid

    from portal.services import audit

    settings = load_settings()
    try:
        message_id = uuid.UUID(args.message) if args.message else None
    except ValueError:
        print(f"sinetti audit export: --message: not a message id: {args.message}", file=sys.stderr)
        return 2
    try:
        since = _moment(args.since, settings.tz) if args.since else None
        until = _moment(args.until, settings.tz, end_of_day=True) if args.until else None
    except ValueError as exc:
        print(f"sinetti audit export: {exc}", file=sys.stderr)
        return 2
    if since is not None and until is not None and since >= until:
        print("sinetti audit export: --since must be before --until", file=sys.stderr)
        return 2
    try:
        out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    except OSError as exc:
        print(f"sinetti audit export: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        count = asyncio.run(_on_database(lambda: audit.export(out.write, message_id, since, until)))
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"Exported {count} audit event(s).", file=sys.stderr)  # stdout holds only the lines
    return 0


def _verify_receipt(args: argparse.Namespace) -> int:
    """Check a signed receipt offline: 0 valid, 1 invalid, 2 the file or key cannot be read."""
    from pathlib import Path

    from portal.services import receipts

    try:
        document = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"sinetti verify-receipt: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    key_file = Path(args.key) if args.key else load_settings().signing_key_path
    try:
        key = receipts.load_public_key(key_file)
    except receipts.ReceiptKeyError as exc:
        print(f"sinetti verify-receipt: {exc}", file=sys.stderr)
        return 2
    try:
        receipt = receipts.verify(document, key)
    except receipts.InvalidReceipt as exc:
        print(f"INVALID: {exc}")
        return 1
    print("valid: signed by the key " + receipts.fingerprint(key))
    print(receipts.summary(receipt))
    return 0


def _plugins(pm: pluggy.PluginManager, args: argparse.Namespace) -> int:
    print(format_inventory(inventory(pm)))
    return 0


def _new_plugin(pm: pluggy.PluginManager, args: argparse.Namespace) -> int:
    """Write a plugin package (:mod:`portal.scaffold`); needs no settings and no database."""
    from pathlib import Path

    from portal import scaffold

    label = scaffold.PROVIDES.get(args.kind, "")
    taken = frozenset(name for info in inventory(pm) for name in info.provides.get(label, []))
    try:
        plugin = scaffold.check(args.kind, args.name, taken)
        target = scaffold.generate(plugin, Path(args.directory))
    except scaffold.ScaffoldError as exc:
        print(f"sinetti new-plugin: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {target}/ (see its README.md). Install it with: pip install -e {target}")
    return 0


def _plugin_command(
    command: CliCommand, plugins: Sequence[object] | None, args: argparse.Namespace
) -> int:
    async def run(app: Quart) -> int:
        result = command.run(args)
        if inspect.isawaitable(result):
            result = await result
        return int(result or 0)

    return asyncio.run(_with_app(plugins, run))


def main(argv: list[str] | None = None, plugins: Sequence[object] | None = None) -> int:
    """Run ``sinetti``; ``plugins`` replaces entry-point discovery with exactly these (tests)."""
    pm = make_plugin_manager(plugins)
    parser = argparse.ArgumentParser(prog="sinetti", description="Sinetti secure-message portal")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the portal (Hypercorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--access-log", action="store_true")
    serve.add_argument("--no-migrate", action="store_true", help="do not apply migrations first")
    serve.set_defaults(func=_serve)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(func=_migrate)
    outbox = commands.add_parser("outbox", help="show queued and failed e-mail and SMS")
    outbox.add_argument(
        "--json",
        action="store_true",
        help="counts per status and lane and the oldest pending item's age, as JSON",
    )
    outbox.set_defaults(func=_outbox)
    outbox_actions = outbox.add_subparsers(dest="outbox_action")
    retry = outbox_actions.add_parser("retry", help="queue failed e-mail and SMS again")
    retry.add_argument("--all", action="store_true", help="every failed item that can be")
    retry.add_argument("ids", nargs="*", type=int, metavar="ID", help="failed items to retry")
    retry.set_defaults(func=_outbox_retry)
    scans = commands.add_parser(
        "scans", help="messages waiting for their malware check, and the checks that failed"
    )
    scans.add_argument("--json", action="store_true", help="as JSON")
    scans.set_defaults(func=_scans)
    commands.add_parser(
        "cleanup",
        help="delete abandoned uploads, expired drafts and sessions now (the server does it"
        " every 10 min)",
    ).set_defaults(func=functools.partial(_cleanup, plugins))
    purge = commands.add_parser(
        "purge",
        help="delete what is due: messages past PORTAL_RETENTION_DAYS, old links and logs,"
        " stored files no message references",
    )
    purge.add_argument("--dry-run", action="store_true", help="only count what would go")
    purge.add_argument("--json", action="store_true", help="print the counts as JSON")
    purge.add_argument(
        "--orphans-older-than",
        type=_minutes,
        default=60,
        metavar="MINUTES",
        help="sweep stored files no row names once this old (default 60; less only while"
        " every server is stopped: a file being uploaded has no row yet)",
    )
    purge.set_defaults(func=functools.partial(_purge, plugins))
    keys = commands.add_parser("keys", help="the keys that encrypt the messages")
    keys_actions = keys.add_subparsers(dest="keys_action", required=True)
    keys_actions.add_parser(
        "status", help="how many data keys each key-encryption key wraps"
    ).set_defaults(func=functools.partial(_keys, plugins))
    rotate = keys_actions.add_parser(
        "rotate",
        help="re-wrap every data key under the current key-encryption key (stored files are"
        " not touched; run it again to resume)",
    )
    rotate.add_argument(
        "--new-key", action="store_true", help="first make a new key-encryption key the current"
    )
    rotate.add_argument("--batch", type=int, default=200, help="keys per batch (default 200)")
    rotate.set_defaults(func=functools.partial(_keys, plugins))
    audit = commands.add_parser("audit", help="the audit trail of messages")
    audit_actions = audit.add_subparsers(dest="audit_action", required=True)
    export = audit_actions.add_parser(
        "export", help="write the audit trail as JSON Lines (oldest first)"
    )
    export.add_argument("--message", metavar="ID", help="only the events of this message")
    export.add_argument(
        "--since",
        metavar="DATE",
        help="only events at or after this date (2026-11-01) or time (2026-11-01T08:00);"
        " PORTAL_TIMEZONE unless it names an offset",
    )
    export.add_argument(
        "--until", metavar="DATE", help="only events before this time, or up to the end of this day"
    )
    export.add_argument("--output", metavar="FILE", help="write to FILE (default: stdout)")
    export.set_defaults(func=_audit_export)
    verify_receipt = commands.add_parser(
        "verify-receipt", help="check a signed receipt (receipt.json) offline"
    )
    verify_receipt.add_argument("file", help="the receipt, e.g. receipt.json")
    verify_receipt.add_argument(
        "--key", help="the public key (PEM) to check with (default: this portal's own key)"
    )
    verify_receipt.set_defaults(func=_verify_receipt)
    commands.add_parser(
        "plugins", help="list the installed plugins, their versions and what each provides"
    ).set_defaults(func=functools.partial(_plugins, pm))
    new_plugin = commands.add_parser(
        "new-plugin", help="write a new plugin package: a theme, verification, SMS or storage"
    )
    new_plugin.add_argument("--kind", required=True, help="theme, verification, sms or storage")
    new_plugin.add_argument("name", help="lower-case letters, digits and dashes, like acme")
    new_plugin.add_argument("--directory", default=".", help="where to write it (default: .)")
    new_plugin.set_defaults(func=functools.partial(_new_plugin, pm))
    try:
        for command in plugin_commands(pm, taken=commands.choices):
            sub = commands.add_parser(command.name, help=command.help)
            command.configure(sub)
            sub.set_defaults(func=functools.partial(_plugin_command, command, plugins))
    except CommandClash as exc:
        print(f"sinetti: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    # Before any command creates anything: the data directory, database, secret key and files
    # are the portal's alone (see portal/filemodes.py for why here and not in create_app).
    filemodes.keep_files_private()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"sinetti: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
