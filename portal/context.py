"""What one running portal holds: its settings, plugin manager and chosen providers."""

from __future__ import annotations

import dataclasses

import pluggy
from quart import current_app

from portal.config import Settings
from portal.plugins import Providers


@dataclasses.dataclass
class Portal:
    settings: Settings
    pm: pluggy.PluginManager
    providers: Providers


def portal() -> Portal:
    """The portal of the current app (inside a request or an app context)."""
    return current_app.extensions["sinetti"]
