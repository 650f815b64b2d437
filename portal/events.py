"""Event hooks: what plugins hear after something happened and was committed.

The service that owns the change fires its event (:func:`emit`), whoever called it (a view, a
CLI command, a test). Every implementation runs on its own: a coroutine is awaited, and one
that raises is logged with its plugin's name and changes nothing — not the user's answer and
not what is stored. An event hook is an observer, never a gate.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import pluggy

from portal.context import portal

log = logging.getLogger(__name__)


async def emit(name: str, *, pm: pluggy.PluginManager | None = None, **kwargs: Any) -> None:
    """Call every implementation of the event hook ``name`` with ``kwargs``, in pluggy's
    order (the last registered first); ``pm`` defaults to the current app's."""
    manager = pm or portal().pm
    caller = getattr(manager.hook, name)
    for impl in reversed(caller.get_hookimpls()):
        try:
            result = impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("plugin %s failed in its %s hook; ignored", _label(impl), name)


def _label(impl: Any) -> str:
    """The plugin's name: its entry point or module, or the class of a plugin object
    (registered without a name, pluggy knows it only by a number)."""
    name = str(impl.plugin_name)
    return type(impl.plugin).__name__ if name.isdigit() else name
