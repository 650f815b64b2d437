"""The plugin manager: finds plugins, collects what they register, picks what is configured.

Installed is not enabled: every installed plugin may register providers, but only the ones the
configuration names are instantiated. A configured name that no plugin provides stops start-up
with a message that lists what is installed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import pluggy

from portal import builtin_rules, hookspecs
from portal.config import PREFIX, ConfigError, Settings
from portal.i18n import TranslationDomain
from portal.keys.base import KeyProvider
from portal.mail.base import MailTransport
from portal.providers import Provider
from portal.rules import SignInMethod, sign_in_methods
from portal.scanning.base import Scanner
from portal.sms.base import SmsGateway
from portal.storage.base import StorageBackend
from portal.themes import Theme
from portal.verification.base import VerificationProvider

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "sinetti"
#: The name of the core's own rules among the plugins (``sinetti plugins`` shows it).
CORE_PLUGIN = "sinetti-core"

P = TypeVar("P", bound=Provider)


def make_plugin_manager(plugins: Sequence[object] | None = None) -> pluggy.PluginManager:
    """Load plugins from the ``sinetti`` entry points, or exactly ``plugins`` when given.

    Tests pass ``plugins`` so that they never depend on what happens to be installed. The
    core's own rules (:mod:`portal.builtin_rules`) are registered in either case.
    """
    pm = pluggy.PluginManager("sinetti")
    pm.add_hookspecs(hookspecs)
    pm.register(builtin_rules, name=CORE_PLUGIN)
    if plugins is None:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    else:
        for plugin in plugins:
            pm.register(plugin)
    pm.check_pending()
    return pm


def _collect(results: Iterable[list[Any]], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for batch in results:
        for item in batch:
            if item.name in found:
                raise ConfigError(f"two plugins provide the {kind} {item.name!r}")
            found[item.name] = item
    return found


def _choose(available: dict[str, Any], name: str, kind: str, variable: str) -> Any:
    if name not in available:
        installed = ", ".join(sorted(available)) or "none"
        raise ConfigError(
            f"{PREFIX}{variable}={name}: no installed plugin provides the {kind} {name!r} "
            f"(installed: {installed})"
        )
    return available[name]


@dataclasses.dataclass
class Providers:
    """The provider instances this process uses, chosen from the registered classes."""

    storage: StorageBackend
    mail: MailTransport
    sms: SmsGateway
    keys: KeyProvider
    scanner: Scanner
    verification: dict[str, VerificationProvider]
    theme: Theme
    #: The sign-in methods ``PORTAL_SIGN_IN`` offers, in its order.
    sign_in: dict[str, SignInMethod]

    def all(self) -> list[Provider]:
        return [
            self.storage,
            self.mail,
            self.sms,
            self.keys,
            self.scanner,
            *self.verification.values(),
        ]


def load_providers(pm: pluggy.PluginManager, settings: Settings) -> Providers:
    """Instantiate the configured providers and check every ``PORTAL_*`` variable is claimed."""
    hook = pm.hook
    storages = _collect(hook.register_storage_backends(), "storage backend")
    mails = _collect(hook.register_mail_transports(), "mail transport")
    smses = _collect(hook.register_sms_gateways(), "SMS gateway")
    key_providers = _collect(hook.register_key_providers(), "key provider")
    scanners = _collect(hook.register_scanners(), "scanner")
    verifications = _collect(hook.register_verification_providers(), "verification provider")
    themes = _collect(hook.register_themes(), "theme")

    chosen: list[type[Provider]] = [
        _choose(storages, settings.storage, "storage backend", "STORAGE"),
        _choose(mails, settings.mail, "mail transport", "MAIL"),
        _choose(smses, settings.sms, "SMS gateway", "SMS"),
        _choose(key_providers, settings.keys, "key provider", "KEYS"),
        _choose(scanners, settings.scanner, "scanner", "SCANNER"),
    ]
    _choose(verifications, settings.verification, "verification provider", "VERIFICATION")
    _choose(
        verifications, settings.phone_verification, "verification provider", "PHONE_VERIFICATION"
    )
    theme = _choose(themes, settings.theme, "theme", "THEME")
    methods = sign_in_methods(pm)
    if not settings.sign_in:
        raise ConfigError(f"{PREFIX}SIGN_IN: list at least one sign-in method")
    sign_in = {
        name: _choose(methods, name, "sign-in method", "SIGN_IN") for name in settings.sign_in
    }

    installed = [
        *storages.values(),
        *mails.values(),
        *smses.values(),
        *key_providers.values(),
        *scanners.values(),
        *verifications.values(),
    ]
    _check_unclaimed(settings, installed)

    def make(cls: type[P]) -> P:
        return cls(
            settings, settings.options_for(cls.settings_prefix) if cls.settings_prefix else {}
        )

    storage_cls, mail_cls, sms_cls, keys_cls, scanner_cls = chosen
    return Providers(
        storage=make(storage_cls),  # type: ignore[arg-type]
        mail=make(mail_cls),  # type: ignore[arg-type]
        sms=make(sms_cls),  # type: ignore[arg-type]
        keys=make(keys_cls),  # type: ignore[arg-type]
        scanner=make(scanner_cls),  # type: ignore[arg-type]
        verification={name: make(cls) for name, cls in verifications.items()},
        theme=theme,
        sign_in=sign_in,
    )


def _check_unclaimed(settings: Settings, classes: Iterable[type[Provider]]) -> None:
    claimed = [cls for cls in classes if cls.settings_prefix]
    for key in sorted(settings.plugin_options):
        owners = [cls for cls in claimed if key.startswith(cls.settings_prefix)]
        if not owners:
            raise ConfigError(f"{PREFIX}{key}: unknown setting")
        for cls in owners:
            option = key[len(cls.settings_prefix) :].lower()
            if cls.known_options is not None and option not in cls.known_options:
                raise ConfigError(f"{PREFIX}{key}: unknown setting of the {cls.name!r} plugin")


def translation_domains(pm: pluggy.PluginManager) -> list[TranslationDomain]:
    return [domain for batch in pm.hook.register_translation_domains() for domain in batch]
