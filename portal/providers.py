"""What every pluggable provider (storage, mail, SMS, verification) has in common."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from portal.config import ConfigError

if TYPE_CHECKING:
    from portal.config import Settings

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


class Options:
    """Typed reading of a provider's ``PORTAL_<PREFIX>*`` options, one rule for every plugin.

    Values are stripped. An absent option takes its default; so does an empty text or choice,
    while an empty number or yes/no is an error (it was set, to nothing). A value that
    cannot be used raises :class:`portal.config.ConfigError` naming the variable, so the
    administrator sees which line of the configuration to fix.
    """

    def __init__(self, prefix: str, options: Mapping[str, str]) -> None:
        self.prefix = prefix
        self.options = options

    def variable(self, name: str) -> str:
        """The environment variable of option ``name``: ``PORTAL_<PREFIX><NAME>``."""
        return f"PORTAL_{self.prefix}{name.upper()}"

    def _raw(self, name: str) -> str:
        return self.options.get(name, "").strip()

    def _given(self, name: str) -> str | None:
        """The stripped value of ``name``; None when the option is not set at all."""
        value = self.options.get(name)
        return None if value is None else value.strip()

    def text(self, name: str, default: str = "", *, required: str | None = None) -> str:
        """The text of ``name``; ``required`` says when it must be set (``"when
        PORTAL_SMS=http"``) and makes an empty value an error."""
        value = self._raw(name)
        if not value and required is not None:
            raise ConfigError(f"{self.variable(name)}: required {required}".rstrip())
        return value or default

    def integer(self, name: str, default: int, *, minimum: int = 1) -> int:
        """A whole number of at least ``minimum``."""
        raw = self._given(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            wanted = "a positive whole number" if minimum == 1 else f"a whole number ≥ {minimum}"
            raise ConfigError(f"{self.variable(name)}: expected {wanted}, got {raw!r}")
        return value

    def positive_float(self, name: str, default: float, *, unit: str = "") -> float:
        """A finite number above zero (a timeout); ``unit`` names it in the error."""
        raw = self._given(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            what = f"a positive number of {unit}" if unit else "a positive number"
            raise ConfigError(f"{self.variable(name)}: expected {what}, got {raw!r}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, any case)."""
        raw = self._given(name)
        if raw is None:
            return default
        raw = raw.lower()
        if raw not in _TRUE + _FALSE:
            raise ConfigError(f"{self.variable(name)}: expected true or false, got {raw!r}")
        return raw in _TRUE

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        """One of ``choices``."""
        value = self._raw(name) or default
        if value not in choices:
            expected = ", ".join(choices[:-1]) + f" or {choices[-1]}"
            raise ConfigError(f"{self.variable(name)}: expected {expected}, got {value!r}")
        return value


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

    @property
    def option(self) -> Options:
        """Typed access to :attr:`options`: ``self.option.integer("port", 25)`` raises a
        :class:`~portal.config.ConfigError` naming ``PORTAL_<PREFIX>PORT`` when it is wrong."""
        return Options(self.settings_prefix, self.options)

    async def open(self) -> None:
        """Open connections or check the provider's resources; called before serving."""

    async def close(self) -> None:
        """Release what :meth:`open` took; called after serving."""
