"""Translations and locale selection.

Mark strings with ``_`` (or ``L_`` where the string is built before a request, e.g. at import
time). Placeholders use ``%(name)s`` after the call: ``_("Hello %(name)s") % {"name": n}`` —
never an f-string inside ``_()``.

The catalogs belong to the app (:attr:`portal.context.Portal.translations`: the core's with
its own plugins' merged over them), so two portals in one process never see each other's
strings. The locale is a context variable (:func:`locale_context`). Translation happens in the
current app's context — a request, a CLI command, the outbox worker; outside any app (at import
time, a lazy ``L_`` string printed before start-up) the text stays in English, the source.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from babel import Locale, negotiate_locale
from babel.support import LazyProxy, NullTranslations, Translations
from quart import current_app, has_app_context
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from portal.config import LOCALES

_current = contextvars.ContextVar("locale", default="fi")

LANGUAGE_NAMES = {"fi": "Suomi", "sv": "Svenska", "en": "English"}
COOKIE = "sinetti_lang"


def core_locales_dir() -> Path:
    """``locales/`` of the source tree, or ``portal/locales`` inside an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "locales", here / "locales"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError("the core translations (locales/) are missing")


def load_catalogs(extra_dirs: Iterable[Path] = ()) -> dict[str, NullTranslations]:
    """The compiled core catalogs with the plugin catalogs merged over them, per locale."""
    extra = list(extra_dirs)
    catalogs: dict[str, NullTranslations] = {}
    for locale in LOCALES:
        catalog = Translations.load(str(core_locales_dir()), [locale], "messages")
        if locale != "en" and not isinstance(catalog, Translations):
            raise RuntimeError(f"compiled catalog for {locale} is missing: run `make translations`")
        for folder in extra:
            plugin_catalog = Translations.load(str(folder), [locale], "messages")
            if isinstance(catalog, Translations) and isinstance(plugin_catalog, Translations):
                catalog.merge(plugin_catalog)
        catalogs[locale] = catalog
    return catalogs


def _catalog() -> NullTranslations | None:
    """The current app's catalog for the current locale; None outside a portal app."""
    if not has_app_context():
        return None
    translations: Mapping[str, NullTranslations] = getattr(
        current_app.extensions.get("sinetti"), "translations", {}
    )
    return translations.get(_current.get())


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
