"""Translations and locale selection.

Mark strings with ``_`` (or ``L_`` where the string is built before a request, e.g. at import
time). Placeholders use ``%(name)s`` after the call: ``_("Hello %(name)s") % {"name": n}`` —
never an f-string inside ``_()``.

The catalogs belong to the app (:attr:`portal.context.Portal.translations`), so two portals
in one process never see each other's strings. Each plugin translates its own strings in a
domain of its own (:class:`TranslationDomain`), as Indico's plugins do: a plugin cannot change
the core's words or another plugin's by accident, and a string its catalog lacks falls back
to the core's catalog, then to the English source.

The locale is a context variable (:func:`locale_context`). Translation happens in the current
app's context — a request, a CLI command, the outbox worker; outside any app (at import time,
a lazy ``L_`` string printed before start-up) the text stays in English, the source.
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from babel import Locale, negotiate_locale
from babel.support import LazyProxy, NullTranslations, Translations
from jinja2.runtime import Context
from jinja2.utils import pass_context
from markupsafe import Markup
from quart import current_app, has_app_context
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from portal.config import LOCALES

_current = contextvars.ContextVar("locale", default="fi")
#: The core's own domain in :attr:`portal.context.Portal.translations`.
CORE_DOMAIN = "sinetti"

LANGUAGE_NAMES = {"fi": "Suomi", "sv": "Svenska", "en": "English"}
COOKIE = "sinetti_lang"


def core_locales_dir() -> Path:
    """``locales/`` of the source tree, or ``portal/locales`` inside an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "locales", here / "locales"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError("the core translations (locales/) are missing")


@dataclasses.dataclass(frozen=True)
class TranslationDomain:
    """The strings of one plugin: ``folder/<locale>/LC_MESSAGES/messages.mo``.

    A plugin makes one at import time, returns it from ``register_translation_domains`` and
    translates with its methods (``_ = DOMAIN.gettext``); its templates get them through
    :meth:`template_functions`. A look-up tries the plugin's catalog, then the core's, then
    keeps the English source.
    """

    name: str
    folder: Path

    def gettext(self, message: str) -> str:
        catalog = _catalog(self.name)
        return catalog.ugettext(message) if catalog else message

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        catalog = _catalog(self.name)
        if catalog:
            return catalog.ungettext(singular, plural, n)
        return singular if n == 1 else plural

    def lazy_gettext(self, message: str) -> LazyProxy:
        return LazyProxy(self.gettext, message, enable_cache=False)

    def template_functions(self) -> dict[str, Any]:
        """``_``, ``gettext`` and ``ngettext`` of this domain for a template's context, called
        like the core's in templates (``_("to %(to)s", to=address)``, ``{% trans %}``)."""

        @pass_context
        def gettext(context: Context, message: str, **variables: Any) -> str:
            return _format(context, self.gettext(message), variables)

        @pass_context
        def ngettext(context: Context, singular: str, plural: str, n: int, **variables: Any) -> str:
            variables.setdefault("num", n)
            return _format(context, self.ngettext(singular, plural, n), variables)

        return {"_": gettext, "gettext": gettext, "ngettext": ngettext}


def _format(context: Context, text: str, variables: dict[str, Any]) -> str:
    """As Jinja's new-style gettext does: the translation is trusted markup, the values are
    escaped into it, and the text is always a format string."""
    if context.eval_ctx.autoescape:
        return Markup(text) % variables  # noqa: S704 -- our own catalog, values escaped
    return text % variables


Catalogs = Mapping[str, Mapping[str, NullTranslations]]


def load_catalogs(domains: Iterable[TranslationDomain] = ()) -> dict[str, dict[str, Any]]:
    """Per domain (the core's is :data:`CORE_DOMAIN`), per locale: the compiled catalog; a
    plugin's catalog falls back to the core's, and a locale it lacks is the core's."""
    core: dict[str, Any] = {}
    for locale in LOCALES:
        catalog = Translations.load(str(core_locales_dir()), [locale], "messages")
        if locale != "en" and not isinstance(catalog, Translations):
            raise RuntimeError(f"compiled catalog for {locale} is missing: run `make translations`")
        core[locale] = catalog
    catalogs: dict[str, dict[str, Any]] = {CORE_DOMAIN: core}
    for domain in domains:
        if domain.name in catalogs:
            raise RuntimeError(f"two translation domains are named {domain.name!r}")
        catalogs[domain.name] = {}
        for locale in LOCALES:
            own = Translations.load(str(domain.folder), [locale], "messages")
            if isinstance(own, Translations):
                own.add_fallback(core[locale])
                catalogs[domain.name][locale] = own
            else:
                catalogs[domain.name][locale] = core[locale]
    return catalogs


def _catalog(domain: str = CORE_DOMAIN) -> NullTranslations | None:
    """The current app's catalog of ``domain`` (the core's when the app does not know it) for
    the current locale; None outside a portal app."""
    if not has_app_context():
        return None
    translations: Catalogs = getattr(current_app.extensions.get("sinetti"), "translations", {})
    catalogs = translations.get(domain) or translations.get(CORE_DOMAIN, {})
    return catalogs.get(_current.get())


def current_locale() -> str:
    return _current.get()


def set_locale(locale: str) -> contextvars.Token[str]:
    return _current.set(locale if locale in LOCALES else "fi")


@contextmanager
def locale_context(locale: str) -> Iterator[None]:
    """Render in ``locale`` for a while (e-mails in the recipient's languages)."""
    token = set_locale(locale)
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    catalog = _catalog()
    return catalog.ugettext(message) if catalog else message


def ngettext(singular: str, plural: str, n: int) -> str:
    catalog = _catalog()
    if catalog:
        return catalog.ungettext(singular, plural, n)
    return singular if n == 1 else plural


def lazy_gettext(message: str) -> LazyProxy:
    return LazyProxy(gettext, message, enable_cache=False)


_ = gettext
L_ = lazy_gettext


def negotiate(accept_language: str | None, default: str) -> str:
    """The best of our locales for an ``Accept-Language`` header, else ``default``.

    Werkzeug parses the header (best quality first, ``q=0`` meaning "not this"); Babel takes
    the first preference we have, by its language when we lack the region (``sv-FI`` is
    ``sv``). Not werkzeug's ``best_match``: that prefers any exact tag to a better-liked
    regional one, so ``sv-FI, fi;q=0.9`` would get Finnish.
    """
    accepted = [
        tag.lower()
        for tag, quality in parse_accept_header(accept_language, LanguageAccept)
        if quality > 0
    ]
    return negotiate_locale(accepted, LOCALES, sep="-", aliases={}) or default


def babel_locale() -> Locale:
    return Locale.parse(_current.get())
