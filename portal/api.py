"""The plugin API of Sinetti: everything a plugin may import from the portal.

A plugin imports ``portal.api`` and nothing else from ``portal`` (the built-in plugins and
themes are held to that by ``tests/unit/test_plugin_api.py``). What is named here stays
compatible within a major version of :data:`API_VERSION`: a name is not removed or renamed, a
function keeps its parameters (new ones only with defaults), a base class keeps its methods
and their meaning, a hook keeps its name and arguments. Anything else in ``portal`` is the
portal's own and may change in any release. ``docs/plugin-api.md`` lists the surface with its
changelog.

What is here, by job:

- **Hooks**: :data:`hookimpl` marks a plugin's hook implementations; the hooks themselves
  are documented in :mod:`portal.hookspecs`.
- **Providers**: the base classes of what ``register_*`` hooks return
  (:class:`StorageBackend`, :class:`MailTransport`, :class:`SmsGateway`,
  :class:`VerificationProvider` and :class:`CodeVerificationProvider`, :class:`Theme`,
  :class:`CliCommand`, :class:`RecipientPolicy`, :class:`SignInMethod`, :class:`KeyProvider`,
  :class:`Scanner`) and what their methods take and return.
- **Settings**: :func:`settings` (the portal's :class:`Settings`), :class:`Options` (typed
  ``PORTAL_<PREFIX>*`` options, raising :class:`ConfigError`).
- **Queueing**: :func:`queue_mail` and :func:`queue_sms` hand a message to the outbox, which
  retries until the transport takes it.
- **Pages**: :func:`render_page` renders a template inside the portal's layout (the theme,
  the language menu, htmx fragments).
- **Translations**: :class:`TranslationDomain` for the plugin's own strings,
  :func:`locale_context` and :func:`current_locale`.
- **Sign-in**: :func:`sign_in_sender` starts a sender's session once a
  :class:`SignInMethod` has proved who they are.
- **Models** a hook receives (:class:`Message`, :class:`Recipient`, :class:`Attachment`,
  :class:`OutboxItem`): read their documented fields; do not save them.
"""

from __future__ import annotations

from datetime import datetime

from portal import sessions
from portal.clicommands import CliCommand
from portal.config import ConfigError, Settings
from portal.context import portal
from portal.crypto.envelope import KeyWrapper, UnwrapError
from portal.hookspecs import hookimpl
from portal.i18n import TranslationDomain, current_locale, locale_context
from portal.keys.base import DataKey, KeyProvider, KeyUnavailable, WrappedKey
from portal.mail.base import MailDeliveryError, MailTransport, OutgoingMail
from portal.models import Attachment, Message, OutboxItem, Recipient
from portal.providers import Options, Provider
from portal.rules import RecipientDecision, SignInMethod
from portal.scanning.base import Scanner, ScannerUnavailable, Verdict
from portal.security import csrf_token
from portal.services import clock, outbox, registration
from portal.services.recipients import mask_phone
from portal.sms.base import SmsDeliveryError, SmsGateway
from portal.storage.base import (
    ObjectNotFound,
    StorageBackend,
    StorageError,
    StorageWriter,
    StoredItem,
)
from portal.themes import Theme
from portal.verification.base import Outcome, Problem, Prompt, VerificationProvider
from portal.verification.codes import CodeVerificationProvider
from portal.web import render_page

#: The version of this surface: a plugin may check the major number.
API_VERSION = "1.0"

__all__ = [
    "API_VERSION",
    "Attachment",
    "CliCommand",
    "CodeVerificationProvider",
    "ConfigError",
    "DataKey",
    "KeyProvider",
    "KeyUnavailable",
    "KeyWrapper",
    "MailDeliveryError",
    "MailTransport",
    "Message",
    "ObjectNotFound",
    "Options",
    "OutboxItem",
    "Outcome",
    "OutgoingMail",
    "Problem",
    "Prompt",
    "Provider",
    "Recipient",
    "RecipientDecision",
    "Scanner",
    "ScannerUnavailable",
    "Settings",
    "SignInMethod",
    "SmsDeliveryError",
    "SmsGateway",
    "StorageBackend",
    "StorageError",
    "StorageWriter",
    "StoredItem",
    "Theme",
    "TranslationDomain",
    "UnwrapError",
    "Verdict",
    "VerificationProvider",
    "WrappedKey",
    "csrf_token",
    "current_locale",
    "hookimpl",
    "locale_context",
    "mask_phone",
    "now",
    "organisation_name",
    "queue_mail",
    "queue_sms",
    "render_page",
    "settings",
    "sign_in_sender",
]


def now() -> datetime:
    """The current time, aware, in UTC (the portal's clock, which tests move)."""
    return clock.now()


def settings() -> Settings:
    """The settings of the portal of the current app (a request, a CLI command, the outbox)."""
    return portal().settings


def organisation_name(locale: str) -> str:
    """The agency's name in ``locale``, as the selected theme says it."""
    return portal().providers.theme.text("organisation", locale)


async def queue_mail(mail: OutgoingMail) -> OutboxItem:
    """Queue ``mail`` for the mail transport; it is retried until delivered or given up.

    Call it inside your own database transaction if the mail belongs to a change you make:
    then it is queued exactly when the change is committed.
    """
    item = await outbox.enqueue_mail(mail)
    outbox.wake()
    return item


async def queue_sms(to: str, text: str) -> OutboxItem:
    """Queue an SMS of ``text`` to ``to`` (E.164) for the SMS gateway, retried like mail."""
    item = await outbox.enqueue_sms(to, text)
    outbox.wake()
    return item


async def sign_in_sender(email: str) -> None:
    """Sign the browser of the current request in as the sender ``email`` (made on first
    sign-in), with a new session id and CSRF token; then redirect to ``/compose``.

    For a :class:`SignInMethod`'s own pages, once the method has proved that the person owns
    ``email``; call it from a POST handler (the portal checks its CSRF token). Raises
    ``ValueError`` when ``email`` is not a usable e-mail address.
    """
    try:
        sender = await registration.sender_for(email)
    except registration.RegistrationRefused:
        raise ValueError(f"not a usable e-mail address: {email!r}") from None
    await sessions.sign_in(sender)
