"""The e-mails the portal writes: registration links and new-message notifications.

Notifications carry a link and never the message content. They are written in all three
languages, the agency's default first; a registration mail is in the sender's language.
"""

from __future__ import annotations

from quart import render_template

from portal.config import LOCALES, Settings
from portal.context import portal
from portal.i18n import _, locale_context
from portal.mail.base import OutgoingMail


def _organisation(locale: str) -> str:
    return portal().providers.theme.text("organisation", locale)


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
        return OutgoingMail(
            to=email,
            subject=_("Your personal link to send a confidential message"),
            text=await render_template("mail/registration.txt", **context),
            html=await render_template("mail/registration.html", **context),
        )


def _languages(default: str) -> list[str]:
    return [default, *(code for code in LOCALES if code != default)]


async def message_notification(
    settings: Settings, to: str, sender_email: str, token: str
) -> OutgoingMail:
    link = settings.url(f"/m/{token}")
    parts = []
    for locale in _languages(settings.default_locale):
        with locale_context(locale):
            parts.append(
                {
                    "locale": locale,
                    "organisation": _organisation(locale),
                    "subject": _("Confidential message"),
                    "intro": _(
                        "%(sender)s has sent you a confidential message through %(organisation)s."
                    )
                    % {"sender": sender_email, "organisation": _organisation(locale)},
                    "action": _("Open the message with this personal link:"),
                    "button": _("Open message"),
                    "note": _(
                        "The link is for you only; do not forward this e-mail. "
                        "The message itself is not in this e-mail."
                    ),
                }
            )
    context = {"parts": parts, "link": link}
    return OutgoingMail(
        to=to,
        subject=" / ".join(part["subject"] for part in parts),
        text=await render_template("mail/notification.txt", **context),
        html=await render_template("mail/notification.html", **context),
    )
