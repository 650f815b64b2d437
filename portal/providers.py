"""What every pluggable provider (storage, mail, SMS, verification) has in common."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from portal.config import Settings


class Provider:
    """Base of every provider class that a plugin registers through a ``register_*`` hook.

    ``name`` is what the configuration uses to pick it. ``settings_prefix`` (``"SMTP_"``)
    claims the ``PORTAL_SMTP_*`` variables; the provider gets them in ``options`` with the
    prefix removed and the keys lower-cased, and must raise
    :class:`portal.config.ConfigError` naming the variable when one is wrong.
    One instance is made per portal process, at start-up.
    """

    name: ClassVar[str]
    settings_prefix: ClassVar[str] = ""
    #: The option names (lower case, without the prefix) the provider reads. When set, an
    #: unknown ``PORTAL_<PREFIX>*`` variable stops start-up even if this provider is not the
    #: one selected, so a typo never waits for the day the provider is switched on.
    known_options: ClassVar[frozenset[str] | None] = None

    def __init__(self, settings: Settings, options: dict[str, str]) -> None:
        self.settings = settings
        self.options = options

    async def open(self) -> None:
        """Open connections or check the provider's resources; called before serving."""

    async def close(self) -> None:
        """Release what :meth:`open` took; called after serving."""
