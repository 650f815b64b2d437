"""The e-mails the portal writes: registration links, new-message notifications, and the
notices a sender gets about their message (read receipts, a recipient locked out, the signed
receipt of what they sent).

Notifications carry a link and never the message content (not even its subject). They are
written in all three languages, the agency's default first; a registration mail and the
notices to a sender are in the sender's language. The signed receipt is the one mail that
names a subject and file names: it goes only to the sender's own (verified) address, as the
proof of what they filed; it never holds the message text or the files.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from portal.config import LOCALES, Settings
from portal.context import portal
from portal.i18n import _, locale_context
from portal.mail.base import OutgoingMail
from portal.rendering import render_text
from portal.services import retention
from portal.services.files import format_when


def _organisation(locale: str) -> str:
    return portal().providers.theme.text("organisation", locale)


async def _mail(to: str, subject: str, template: str, context: dict[str, Any]) -> OutgoingMail:
    """A mail of ``mail/<template>.txt`` and ``.html`` rendered with ``context``."""
    return OutgoingMail(
        to=to,
        subject=subject,
        text=await render_text(f"mail/{template}.txt", **context),
        html=await render_text(f"mail/{template}.html", **context),
    )


async def registration_mail(
    settings: Settings, email: str, token: str, locale: str
) -> OutgoingMail:
    link = settings.url(f"/s/{token}")
    with locale_context(locale):
        context = {
            "link": link,
            "days": settings.link_valid_days,
            "organisation": _organisation(locale),
            "mail_locale": locale,
        }
        return await _mail(
            email, _("Your personal link to send a confidential message"), "registration", context
        )


def _languages(default: str) -> list[str]:
    return [default, *(code for code in LOCALES if code != default)]


async def message_notification(
    settings: Settings,
    to: str,
    sender_email: str,
    token: str,
    *,
    sent_at: datetime,
    reply: bool = False,
) -> OutgoingMail:
    """The mail with a recipient's personal link; ``reply`` when it answers their message.
    It says until when the message can be opened (``sent_at`` plus the retention)."""
    link = settings.url(f"/m/{token}")
    parts = []
    for locale in _languages(settings.default_locale):
        with locale_context(locale):
            names = {"sender": sender_email, "organisation": _organisation(locale)}
            if reply:
                subject = _("Reply to your confidential message")
                intro = _(
                    "%(sender)s has replied to your confidential message through %(organisation)s."
                )
            else:
                subject = _("Confidential message")
                intro = _(
                    "%(sender)s has sent you a confidential message through %(organisation)s."
                )
            parts.append(
                {
                    "locale": locale,
                    "organisation": _organisation(locale),
                    "subject": subject,
                    "intro": intro % names,
                    "action": _("Open the message with this personal link:"),
                    "button": _("Open message"),
                    "until": _("The message will be deleted on %(date)s; open it before then.")
                    % {"date": retention.deletion_day(sent_at, settings)},
                    "note": _(
                        "The link is for you only; do not forward this e-mail. "
                        "The message itself is not in this e-mail."
                    ),
                }
            )
    context = {"parts": parts, "link": link}
    return await _mail(to, " / ".join(part["subject"] for part in parts), "notification", context)


async def _notice(to: str, locale: str, subject: str, paragraphs: list[str]) -> OutgoingMail:
    context = {
        "subject": subject,
        "paragraphs": paragraphs,
        "organisation": _organisation(locale),
        "mail_locale": locale,
    }
    return await _mail(to, subject, "notice", context)


async def read_receipt(
    to: str, locale: str, recipient_email: str, sent_at: str, opened_at: str
) -> OutgoingMail:
    """To the sender: ``recipient_email`` opened the message (times already formatted)."""
    with locale_context(locale):
        return await _notice(
            to,
            locale,
            _("Read receipt"),
            [
                _(
                    "Your confidential message sent on %(sent)s was opened by %(recipient)s "
                    "on %(opened)s."
                )
                % {"sent": sent_at, "recipient": recipient_email, "opened": opened_at},
                _("The message itself is not in this e-mail."),
            ],
        )


async def access_locked(to: str, locale: str, recipient_email: str, sent_at: str) -> OutgoingMail:
    """To the sender: a recipient gave too many wrong codes and can no longer open it."""
    with locale_context(locale):
        return await _notice(
            to,
            locale,
            _("A recipient could not open your message"),
            [
                _(
                    "%(recipient)s typed a wrong code too many times, so their access to your "
                    "confidential message sent on %(sent)s is now locked."
                )
                % {"recipient": recipient_email, "sent": sent_at},
                _(
                    "Contact the recipient in another way, and if needed send the message again "
                    "with the right phone number."
                ),
            ],
        )


async def malware_found(
    to: str, locale: str, sent_at: str, files: list[tuple[str, str]]
) -> OutgoingMail:
    """To the sender: malware was found in ``files`` ((name, what was found)) of the message
    sent on ``sent_at``; it was stopped and its recipients were not notified."""
    with locale_context(locale):
        names = "; ".join(
            _("%(name)s (%(found)s)") % {"name": name, "found": found} for name, found in files
        )
        return await _notice(
            to,
            locale,
            _("Your message was not delivered: malware was found"),
            [
                _(
                    "The malware check found harmful content in the attachments of the "
                    "confidential message you sent on %(sent)s: %(files)s."
                )
                % {"sent": sent_at, "files": names},
                _(
                    "The message was stopped: its recipients were not notified, and the files "
                    "were deleted. Check your computer with an up-to-date virus scanner, then "
                    "send the message again with clean files."
                ),
            ],
        )


async def submission_receipt(
    settings: Settings, to: str, locale: str, receipt: str, sent_at: datetime
) -> OutgoingMail:
    """To the sender: the signed receipt of what they just sent (``receipt``: the signed
    document, as :func:`portal.services.receipts.issue` made it).

    The transports send text and html only, so the receipt is a block in the body, between
    marker lines, to be saved as ``receipt.json`` exactly as it stands. It names the subject,
    the addresses and the file names, never the message text or the files.
    """
    with locale_context(locale):
        subject = _("Receipt of your confidential message")
        context = {
            "subject": subject,
            "intro": _(
                "Your confidential message was sent on %(sent)s. Below is its receipt, signed "
                "by %(organisation)s: it proves who sent it, to whom, when, with which subject "
                "and with which attachments (their names, sizes and SHA-256 checksums)."
            )
            % {"sent": format_when(sent_at, settings.tz), "organisation": _organisation(locale)},
            "retention": _(
                "Your message and its attachments will be deleted from the portal on %(date)s."
            )
            % {"date": retention.deletion_day(sent_at, settings)},
            "contents": _(
                "The message text and the attachments themselves are not in this e-mail. "
                "The same receipt is on the confirmation page and in the zip of the message."
            ),
            "check": _(
                "To check it, save the receipt as the file receipt.json, exactly as it is, "
                "and verify its signature with the portal's public key:"
            ),
            "key_url": settings.url("/.well-known/sinetti-receipt-key"),
            "receipt": receipt,
            "organisation": _organisation(locale),
            "mail_locale": locale,
        }
        return await _mail(to, subject, "receipt", context)
