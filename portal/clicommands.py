"""What plugins add to the ``sinetti`` command, and what ``sinetti plugins`` reports.

A plugin declares a subcommand here (:class:`CliCommand`) instead of parsing ``sys.argv``
itself, so that :mod:`portal.cli` builds one parser, refuses a name taken twice before
anything runs, and runs the command like its own ``cleanup``: the app made, the database
connected, inside the app context, everything closed afterwards.

The inventory asks every ``register_*`` hook implementation of one plugin alone, so an agency
sees which installed package provides which storage backend, theme or command — the names
the ``PORTAL_*`` settings pick from.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from importlib import metadata
from typing import Any, cast

import pluggy

from portal.i18n import TranslationDomain
from portal.plugins import CORE_PLUGIN

#: Each ``register_*`` hook and the word ``sinetti plugins`` shows for what it returns.
PROVIDES = (
    ("register_storage_backends", "storage"),
    ("register_verification_providers", "verification"),
    ("register_mail_transports", "mail"),
    ("register_sms_gateways", "sms"),
    ("register_key_providers", "keys"),
    ("register_scanners", "scanner"),
    ("register_themes", "themes"),
    ("register_blueprints", "blueprints"),
    ("register_translation_domains", "translations"),
    ("register_cli_commands", "commands"),
    ("register_sign_in_methods", "sign-in"),
)
#: Hooks through which a plugin takes over a rule of the portal (:mod:`portal.rules`).
RULES = ("recipient_policy", "choose_verification")


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """The default ``configure``: the command takes no arguments."""


@dataclasses.dataclass(frozen=True)
class CliCommand:
    """``sinetti <name>``: a subcommand a plugin adds.

    ``configure`` adds the command's arguments to its own ``argparse`` parser. ``run`` gets the
    parsed arguments and returns the exit code (``None`` counts as 0); it may be a coroutine
    function. It runs inside the app context with the database connected, so it may call the
    services and ``portal.context.portal()``.
    """

    name: str
    help: str
    run: Callable[[argparse.Namespace], Awaitable[int | None] | int | None]
    configure: Callable[[argparse.ArgumentParser], None] = _no_arguments


class CommandClash(Exception):
    """Two commands want the same name: ``sinetti`` would not know which one to run."""


def plugin_commands(pm: pluggy.PluginManager, taken: Iterable[str]) -> list[CliCommand]:
    """The commands of every plugin, in name order; a name already ``taken`` (by the core)
    or registered by two plugins raises :class:`CommandClash` naming both owners."""
    owners = dict.fromkeys(taken, "the core")
    found: dict[str, CliCommand] = {}
    for impl in pm.hook.register_cli_commands.get_hookimpls():
        for command in cast(list[CliCommand], impl.function()):
            if command.name in owners:
                raise CommandClash(
                    f"the plugin {impl.plugin_name!r} adds the command {command.name!r}, which"
                    f" {owners[command.name]} already has"
                )
            owners[command.name] = f"the plugin {impl.plugin_name!r}"
            found[command.name] = command
    return [found[name] for name in sorted(found)]


@dataclasses.dataclass(frozen=True)
class PluginInfo:
    """One installed plugin: its name, the package it came from and what it provides."""

    name: str
    distribution: str
    version: str
    provides: dict[str, list[str]]


def inventory(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Every plugin of ``pm`` in name order, with what each ``register_*`` hook of it returns.

    The distribution comes from the entry point the plugin was loaded through (pluggy keeps
    its ``importlib.metadata`` distribution); a plugin registered directly has none (``-``).
    """
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    provides: dict[str, dict[str, list[str]]] = {}
    for hook, label in PROVIDES:
        for impl in getattr(pm.hook, hook).get_hookimpls():
            names = sorted(
                name for item in cast(list[Any], impl.function()) for name in _names(item)
            )
            provides.setdefault(impl.plugin_name, {})[label] = names
    for hook in RULES:
        for impl in getattr(pm.hook, hook).get_hookimpls():
            provides.setdefault(impl.plugin_name, {}).setdefault("rules", []).append(hook)
    plugins = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        dist: Any = dists.get(id(plugin))
        if name == CORE_PLUGIN:  # the core's own rules, registered without an entry point
            dist = metadata.distribution("sinetti")
        plugins.append(
            PluginInfo(
                name=name,
                distribution=dist.metadata["name"] if dist else "-",
                version=dist.version if dist else "-",
                provides=provides.get(name, {}),
            )
        )
    return sorted(plugins, key=lambda info: info.name)


def _names(item: Any) -> list[str]:
    """What ``sinetti plugins`` calls a registered thing: its ``name``; a translation domain
    also by the locales it holds (``devbox (en, fi, sv)``)."""
    if isinstance(item, TranslationDomain):
        held = sorted(p.name for p in item.folder.iterdir() if (p / "LC_MESSAGES").is_dir())
        return [f"{item.name} ({', '.join(held)})"]
    return [str(item.name)]


def format_inventory(plugins: list[PluginInfo]) -> str:
    """A plain-text table, one plugin a line, columns aligned."""
    rows = [("PLUGIN", "DISTRIBUTION", "VERSION", "PROVIDES")]
    for info in plugins:
        provided = "; ".join(
            f"{label}: {', '.join(info.provides[label]) or '-'}"
            for label in [*(label for _, label in PROVIDES), "rules"]
            if label in info.provides
        )
        rows.append((info.name, info.distribution, info.version, provided or "-"))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return "\n".join(
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)), row[3]]
        )
        for row in rows
    )
