"""Calling hook implementations one by one, for hooks whose answers the portal weighs itself
(events that must not fail together, policies that may be coroutines)."""

from __future__ import annotations

import inspect
from typing import Any


def in_call_order(caller: Any) -> list[Any]:
    """A hook's implementations in the order pluggy calls them: plugins first, ``trylast``
    ones (the core's built-in rules) last."""
    return list(reversed(caller.get_hookimpls()))


async def call(impl: Any, **arguments: Any) -> Any:
    """One implementation, called as pluggy would (with only the arguments it names), and
    awaited when it is a coroutine function."""
    result = impl.function(**{name: arguments[name] for name in impl.argnames})
    return await result if inspect.isawaitable(result) else result


def plugin_label(impl: Any) -> str:
    """The plugin's name: its entry point or module, or the class of a plugin object
    (registered without a name, pluggy knows it only by a number)."""
    name = str(impl.plugin_name)
    return type(impl.plugin).__name__ if name.isdigit() else name
