"""The Message-ID of an e-mail is fixed when it is queued: a second delivery after a crash
(through a real SMTP server on loopback) is recognisably the same mail."""

from __future__ import annotations

import asyncio

import pytest
from sinetti_mail_smtp import SmtpTransport

from portal.config import load_settings
from portal.mail.base import MailTransport, OutgoingMail
from portal.models import OutboxItem, OutboxStatus
from portal.services import outbox

from .outbox_support import RecordingSms


class CrashAfterSending(MailTransport):
    """Hands the mail to the real SMTP transport, then the worker "dies" before it could
    record the outcome (a cancellation escapes the outbox like a killed process would)."""

    name = "crash-after-sending"

    def __init__(self, smtp: SmtpTransport) -> None:
        super().__init__(None, {})  # type: ignore[arg-type]
        self.smtp = smtp

    async def send(self, mail: OutgoingMail) -> None:
        await self.smtp.send(mail)
        raise asyncio.CancelledError


@pytest.fixture
def smtp(portal_config, smtp_server) -> SmtpTransport:
    settings = load_settings(override={**portal_config, "mail_from": "sinetti@portal.test"})
    return SmtpTransport(settings, {"host": "127.0.0.1", "port": str(smtp_server.port)})


async def test_mail_delivered_again_after_a_crash_carries_the_same_message_id(
    database, smtp, smtp_server, moved_clock
):
    item = await outbox.enqueue_mail(OutgoingMail("ville@valtori.fi", "Aihe", "Avaa viesti"))

    with pytest.raises(asyncio.CancelledError):
        await outbox.deliver_due(CrashAfterSending(smtp), RecordingSms(), max_attempts=5)
    moved_clock.advance(seconds=outbox.claim_time(outbox.DELIVERY_TIMEOUT_SECONDS).seconds + 1)
    assert await outbox.deliver_due(smtp, RecordingSms(), max_attempts=5) == 1

    first, second = smtp_server.to("ville@valtori.fi")
    assert first.message["Message-ID"] == second.message["Message-ID"] == item.mail_message_id
    assert item.mail_message_id.startswith("<") and item.mail_message_id.endswith(">")
    stored = await OutboxItem.get(id=item.id)
    assert (stored.status, stored.attempts) == (OutboxStatus.SENT, 2)


async def test_every_queued_mail_gets_a_message_id_of_its_own(database, smtp, smtp_server):
    for address in ("ville@valtori.fi", "maija@valtori.fi"):
        await outbox.enqueue_mail(OutgoingMail(address, "Aihe", "Hei"))

    assert await outbox.deliver_due(smtp, RecordingSms(), max_attempts=5) == 2

    ids = {mail.message["Message-ID"] for mail in smtp_server.messages}
    stored = {item.mail_message_id for item in await OutboxItem.all()}
    assert ids == stored and len(ids) == 2


async def test_a_message_id_given_by_the_caller_is_kept(database, smtp, smtp_server):
    await outbox.enqueue_mail(
        OutgoingMail("ville@valtori.fi", "Aihe", "Hei", message_id="<a@b.fi>")
    )

    await outbox.deliver_due(smtp, RecordingSms(), max_attempts=5)

    (mail,) = smtp_server.messages
    assert mail.message["Message-ID"] == "<a@b.fi>"


def test_a_mail_built_without_the_outbox_still_gets_a_message_id():
    from sinetti_mail_smtp import build_message

    message = build_message(OutgoingMail("ville@valtori.fi", "Aihe", "Hei"), "sinetti@portal.test")

    assert message["Message-ID"].endswith("@portal.test>")
