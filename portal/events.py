"""Event hooks: what plugins hear after something happened and was committed.

The service that owns the change fires its event (:func:`emit`), whoever called it (a view, a
CLI command, a test). Every implementation runs on its own: a coroutine is awaited, and one
that raises is logged with its plugin's name and changes nothing — not the user's answer and
not what is stored. An event hook is an observer, never a gate.
"""

from __future__ import annotations

import logging
from typing import Any

import pluggy

from portal.context import portal
from portal.hookcalls import call, in_call_order, plugin_label

log = logging.getLogger(__name__)


async def emit(name: str, *, pm: pluggy.PluginManager | None = None, **kwargs: Any) -> None:
    """Call every implementation of the event hook ``name`` with ``kwargs``, in pluggy's
    order (the last registered first); ``pm`` defaults to the current app's."""
    manager = pm or portal().pm
    caller = getattr(manager.hook, name)
    for impl in in_call_order(caller):
        try:
            await call(impl, **kwargs)
        except Exception:
            log.exception("plugin %s failed in its %s hook; ignored", plugin_label(impl), name)
