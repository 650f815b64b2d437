"""How long what the portal holds is kept: the dates both sides see, and what is due.

A sent message (with its files, its recipients' links and codes) is kept
``PORTAL_RETENTION_DAYS`` after it was sent; a reply is a message of its own and is kept as
long after *its* sending. :mod:`portal.services.purge` deletes what is due.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from babel.dates import format_date

from portal.config import Settings
from portal.i18n import babel_locale
from portal.models import Message


def deletes_at(sent_at: datetime, settings: Settings) -> datetime:
    """When a message sent at ``sent_at`` is deleted (at the latest: purge runs periodically)."""
    return sent_at + timedelta(days=settings.retention_days)


def deletes_at_of(message: Message, settings: Settings) -> datetime | None:
    """When ``message`` is deleted; None for a draft (drafts expire by ``PORTAL_DRAFT_HOURS``)."""
    return None if message.sent_at is None else deletes_at(message.sent_at, settings)


def deletion_day(sent_at: datetime, settings: Settings) -> str:
    """The day a message sent at ``sent_at`` is deleted, as people read it in the current
    language, in the portal's time zone: ``December 31, 2026``, ``31. joulukuuta 2026``.

    What both sides are shown (pages, notifications): a day, not an instant, is what a person
    plans by, and the same day on every page and in every mail.
    """
    day = deletes_at(sent_at, settings).astimezone(settings.tz)
    return format_date(day, "long", locale=babel_locale())


def sent_before(now: datetime, settings: Settings) -> datetime:
    """Messages sent before this instant are due for deletion at ``now``."""
    return now - timedelta(days=settings.retention_days)
