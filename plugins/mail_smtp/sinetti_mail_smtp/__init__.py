"""Mail transport ``smtp``: delivers through an SMTP server with aiosmtplib.

Settings: ``PORTAL_SMTP_HOST`` (localhost), ``PORTAL_SMTP_PORT`` (25),
``PORTAL_SMTP_USERNAME``, ``PORTAL_SMTP_PASSWORD``, ``PORTAL_SMTP_STARTTLS`` (false),
``PORTAL_SMTP_TIMEOUT`` (30 seconds). The sender address is ``PORTAL_MAIL_FROM``.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from portal.api import MailDeliveryError, MailTransport, OutgoingMail, Settings, hookimpl


def build_message(mail: OutgoingMail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False)
    # The outbox fixes the Message-ID when it queues a mail: a retry is recognisably the same.
    message["Message-ID"] = mail.message_id or make_msgid(
        domain=sender.rpartition("@")[2] or "localhost"
    )
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.text)
    if mail.html:
        message.add_alternative(mail.html, subtype="html")
    return message


class SmtpTransport(MailTransport):
    name = "smtp"
    settings_prefix = "SMTP_"
    known_options = frozenset({"host", "port", "username", "password", "starttls", "timeout"})

    def __init__(self, settings: Settings, options: dict[str, str]) -> None:
        super().__init__(settings, options)
        self.host = self.option.text("host", "localhost")
        self.port = self.option.integer("port", 25)
        self.timeout = self.option.positive_float("timeout", 30, unit="seconds")
        self.starttls = self.option.boolean("starttls", False)
        self.username = options.get("username") or None
        self.password = options.get("password") or None

    async def send(self, mail: OutgoingMail) -> None:
        message = build_message(mail, self.settings.mail_from)
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                start_tls=self.starttls,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise MailDeliveryError(f"recipient refused: {exc}", permanent=True) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailDeliveryError(f"SMTP {self.host}:{self.port}: {exc}") from exc


@hookimpl
def register_mail_transports() -> list[type[MailTransport]]:
    return [SmtpTransport]
