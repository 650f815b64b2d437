"""Every hook of Sinetti, in one place.

A plugin is a module or object with functions named like these, decorated with
``@portal.hookimpl``, and made known to Sinetti through the ``sinetti`` entry-point group of
its package (see the README). The built-in parts of the portal are plugins loaded exactly the
same way.

Hooks named ``register_*`` return classes or objects and do no I/O; the work happens on the
provider's own async methods. Event hooks (``message_sent``…) are fired by the service that
made the change, after it was committed, whoever called the service. An event hook may be a
plain function or a coroutine function (it is awaited); its return value is ignored, and if
it raises, the error is logged with the plugin's name and nothing else changes: not the
user's answer, not what was stored (:mod:`portal.events`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from quart import Blueprint

    from portal.clicommands import CliCommand
    from portal.config import Settings
    from portal.i18n import TranslationDomain
    from portal.keys.base import KeyProvider
    from portal.mail.base import MailTransport
    from portal.models import Attachment, Message, Recipient
    from portal.rules import RecipientDecision, SignInMethod
    from portal.scanning.base import Scanner
    from portal.sms.base import SmsGateway
    from portal.storage.base import StorageBackend
    from portal.themes import Theme
    from portal.verification.base import VerificationProvider

hookspec = pluggy.HookspecMarker("sinetti")
hookimpl = pluggy.HookimplMarker("sinetti")


@hookspec
def register_storage_backends() -> list[type[StorageBackend]]:
    """Return storage backend classes this plugin provides.

    Called once at start-up. Each class has a unique ``name``; ``PORTAL_STORAGE`` picks one.
    """
    raise NotImplementedError


@hookspec
def register_verification_providers() -> list[type[VerificationProvider]]:
    """Return verification provider classes (how a recipient proves who they are).

    Called once at start-up. ``none`` is the default; a recipient address with the phone suffix
    uses ``sms-pin``.
    """
    raise NotImplementedError


@hookspec
def register_mail_transports() -> list[type[MailTransport]]:
    """Return mail transport classes. ``PORTAL_MAIL`` picks one. Called once at start-up."""
    raise NotImplementedError


@hookspec
def register_sms_gateways() -> list[type[SmsGateway]]:
    """Return SMS gateway classes. ``PORTAL_SMS`` picks one. Called once at start-up."""
    raise NotImplementedError


@hookspec
def register_key_providers() -> list[type[KeyProvider]]:
    """Return key provider classes (:class:`portal.api.KeyProvider`): where the
    key-encryption keys that wrap each message's data key are kept. ``PORTAL_KEYS`` picks one.
    Called once at start-up."""
    raise NotImplementedError


@hookspec
def register_scanners() -> list[type[Scanner]]:
    """Return scanner classes (:class:`portal.api.Scanner`): the malware check of attachments
    before a message's recipients are notified. ``PORTAL_SCANNER`` picks one (``none``, built
    in, passes every file). Called once at start-up."""
    raise NotImplementedError


@hookspec
def register_themes() -> list[Theme]:
    """Return :class:`portal.themes.Theme` objects. ``PORTAL_THEME`` picks one."""
    raise NotImplementedError


@hookspec
def register_blueprints() -> list[Blueprint]:
    """Return Quart blueprints with pages of this plugin.

    Called once at start-up, after the providers were chosen; a plugin whose pages only make
    sense with one of its providers selected checks ``current_app`` in its views.
    """
    raise NotImplementedError


@hookspec
def register_translation_domains() -> list[TranslationDomain]:
    """Return the :class:`portal.api.TranslationDomain` objects of this plugin's strings.

    Each domain is the plugin's own (its name unique in the portal): the plugin translates
    with its methods, a string missing from its catalog falls back to the core's, and it can
    change no core string.
    """
    raise NotImplementedError


@hookspec
def register_cli_commands() -> list[CliCommand]:
    """Return :class:`portal.clicommands.CliCommand` objects: ``sinetti <name>`` subcommands.

    Called when ``sinetti`` starts, before it parses its arguments (``sinetti --help`` lists
    them). The command's ``run`` is called with the app made, the database connected and
    inside the app context, so it may call the services. A name the core or another plugin
    already uses stops ``sinetti`` with exit code 2.
    """
    raise NotImplementedError


@hookspec
def register_sign_in_methods() -> list[SignInMethod]:
    """Return :class:`portal.api.SignInMethod` objects: other ways for a sender to sign in
    than the e-mailed personal link (``email-link``, built in). ``PORTAL_SIGN_IN`` lists the
    ones the front page offers.

    The method's ``url`` is a page of the plugin's own blueprint (:func:`register_blueprints`)
    that proves who the sender is and then calls :func:`portal.api.sign_in_sender`.
    """
    raise NotImplementedError


@hookspec
def recipient_policy(email: str, sender_email: str, settings: Settings) -> RecipientDecision | None:
    """Decide whether ``email`` may receive a message from ``sender_email``: return
    :class:`portal.api.RecipientDecision` ``accept()``, ``refuse(reason)`` or
    ``rewrite(email)``, or None for no opinion. May be a coroutine (a directory look-up).

    Asked per recipient when a message is checked before sending, plugins first and the
    built-in allowed-domains rule last; the first accept or refuse ends the asking, a rewrite
    passes the new address on. A policy that raises refuses the address (fail closed).
    """


@hookspec(firstresult=True)
def choose_verification(email: str, phone: str | None, settings: Settings) -> str | None:
    """Return the name of the verification provider for a recipient, or None to let the next
    implementation decide. ``phone`` is the E.164 number the sender gave with the phone
    suffix, or None. The built-in rule, asked last: ``PORTAL_PHONE_VERIFICATION`` with a
    phone number, ``PORTAL_VERIFICATION`` without. A provider with ``requires_phone`` chosen
    for an address without a number refuses the address.
    """


@hookspec
def message_sent(message: Message) -> None:
    """Called after a message was sent and committed (recipients and attachments stored,
    notifications queued). ``message`` has ``recipients`` and ``attachments`` prefetched.
    Use it for audit logs or integrations. Fired for secure replies too (see also
    :func:`reply_sent`).
    """


@hookspec
def message_opened(recipient: Recipient, first: bool) -> None:
    """Called after ``recipient`` passed verification and their message opened in a browser
    session (``first`` on the first open ever, when a read receipt may have been queued).
    ``recipient.message`` and its ``sender`` are loaded. For audit logs.
    """


@hookspec
def download_completed(message: Message, attachment: Attachment | None) -> None:
    """Called when the last byte of a download of ``message`` was handed to the server: one
    ``attachment`` (a Range request counts when it ends at the last byte), or the whole
    message as a zip (``attachment`` is None). A download broken off midway is never
    reported. For audit logs and download receipts.
    """


@hookspec
def sender_registered(email: str, new_sender: bool) -> None:
    """Called after a registration e-mail was queued for ``email``."""


@hookspec
def link_locked(recipient: Recipient) -> None:
    """Called once, after ``recipient``'s link was locked by too many wrong answers to the
    verification (the sender has been e-mailed). ``recipient.message`` and its ``sender`` are
    loaded. For audit logs and alerts to the agency.
    """


@hookspec
def reply_sent(reply: Message, original: Message) -> None:
    """Called after a recipient's secure ``reply`` to ``original`` was sent and committed
    (after :func:`message_sent` for the same ``reply``). ``original.sender`` is loaded.
    """
