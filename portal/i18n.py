"""Translations and locale selection.

Mark strings with ``_`` (or ``L_`` where the string is built before a request, e.g. at import
time). Placeholders use ``%(name)s`` after the call: ``_("Hello %(name)s") % {"name": n}`` —
never an f-string inside ``_()``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from babel import Locale
from babel.support import LazyProxy, NullTranslations, Translations

from portal.config import LOCALES

_current = contextvars.ContextVar("locale", default="fi")
_catalogs: dict[str, NullTranslations] = {}

LANGUAGE_NAMES = {"fi": "Suomi", "sv": "Svenska", "en": "English"}
COOKIE = "sinetti_lang"


def core_locales_dir() -> Path:
    """``locales/`` of the source tree, or ``portal/locales`` inside an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "locales", here / "locales"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError("the core translations (locales/) are missing")


def load_catalogs(extra_dirs: Iterable[Path] = ()) -> None:
    """Load the compiled core catalogs and merge plugin catalogs over them."""
    extra = list(extra_dirs)
    for locale in LOCALES:
        catalog = Translations.load(str(core_locales_dir()), [locale], "messages")
        if locale != "en" and not isinstance(catalog, Translations):
            raise RuntimeError(f"compiled catalog for {locale} is missing: run `make translations`")
        for folder in extra:
            plugin_catalog = Translations.load(str(folder), [locale], "messages")
            if isinstance(catalog, Translations) and isinstance(plugin_catalog, Translations):
                catalog.merge(plugin_catalog)
        _catalogs[locale] = catalog


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
    catalog = _catalogs.get(_current.get())
    return catalog.ugettext(message) if catalog else message


def ngettext(singular: str, plural: str, n: int) -> str:
    catalog = _catalogs.get(_current.get())
    if catalog:
        return catalog.ungettext(singular, plural, n)
    return singular if n == 1 else plural


def lazy_gettext(message: str) -> LazyProxy:
    return LazyProxy(gettext, message, enable_cache=False)


_ = gettext
L_ = lazy_gettext


def negotiate(accept_language: str | None, default: str) -> str:
    """The best of our locales for an ``Accept-Language`` header, else ``default``."""
    if not accept_language:
        return default
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, index, tag.strip().lower()))
    for negative_quality, _index, tag in sorted(ranked):
        if negative_quality >= 0:
            continue
        language = tag.split("-")[0]
        if language in LOCALES:
            return language
    return default


def babel_locale() -> Locale:
    return Locale.parse(_current.get())
