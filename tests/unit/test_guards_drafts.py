"""Guards of portal.services.drafts that mutation testing found unguarded: the room check of
:func:`drafts.ensure_room` counts the draft's own sender's drafts (not everybody's, not
nobody's), a size that fills a limit exactly fits and one byte more does not, and only unsent
drafts expire. :func:`drafts.find` returns only the sender's own unsent draft of that id, the
room shown counts the draft's own bytes and the sender's other unsent drafts (not sent
messages), and a body too big for the sender's limit alone is refused by that limit. The drafts
hold their bytes as ``inflight_bytes`` (what a body being received reserves), which both limits
count."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import pytest

from portal.models import Attachment, Guard, Message, MessageStatus, Sender
from portal.services import clock, drafts

MESSAGE_LIMIT = 1000
SENDER_LIMIT = 1500


@pytest.fixture
def portal_config(portal_config):
    return {
        **portal_config,
        "max_attachments_bytes": MESSAGE_LIMIT,
        "max_draft_bytes_per_sender": SENDER_LIMIT,
    }


@pytest.fixture
def settings(portal_app) -> Any:
    return portal_app.app.extensions["sinetti"].settings


async def draft_of(sender: Sender, held: int = 0, **fields: Any) -> Message:
    return await Message.create(id=uuid.uuid4(), sender=sender, inflight_bytes=held, **fields)


@pytest.fixture
async def senders(portal_app) -> tuple[Sender, Sender]:
    return (
        await Sender.create(email="liisa@example.com"),
        await Sender.create(email="pekka@example.com"),
    )


async def test_the_senders_other_drafts_count_against_the_sender_limit(settings, senders):
    liisa, _pekka = senders
    await draft_of(liisa, held=900)  # another of her drafts: 600 bytes left for her
    draft = await draft_of(liisa)

    with pytest.raises(drafts.NoRoom) as refused:
        await drafts.ensure_room(settings, draft, 601)  # fits the message limit, not hers

    assert refused.value.limit == "sender"
    await drafts.ensure_room(settings, draft, 600)


async def test_another_senders_drafts_do_not_count_against_this_sender(settings, senders):
    liisa, pekka = senders
    await draft_of(pekka, held=MESSAGE_LIMIT)
    await draft_of(pekka, held=MESSAGE_LIMIT)
    draft = await draft_of(liisa)

    await drafts.ensure_room(settings, draft, MESSAGE_LIMIT)  # no NoRoom


async def test_a_size_that_fills_the_message_limit_exactly_fits(settings, senders):
    liisa, _pekka = senders
    draft = await draft_of(liisa, held=400)

    await drafts.ensure_room(settings, draft, MESSAGE_LIMIT - 400)
    with pytest.raises(drafts.NoRoom) as refused:
        await drafts.ensure_room(settings, draft, MESSAGE_LIMIT - 400 + 1)

    assert refused.value.limit == "message"


async def test_a_size_that_fills_the_sender_limit_exactly_fits(settings, senders):
    liisa, _pekka = senders
    await draft_of(liisa, held=SENDER_LIMIT - 700)
    draft = await draft_of(liisa)

    await drafts.ensure_room(settings, draft, 700)
    with pytest.raises(drafts.NoRoom) as refused:
        await drafts.ensure_room(settings, draft, 701)

    assert refused.value.limit == "sender"


async def test_only_unsent_drafts_expire(settings, senders):
    liisa, _pekka = senders
    old = clock.now() - drafts.expired_before(settings) - timedelta(minutes=1)
    stale = await draft_of(liisa)
    sent = await draft_of(liisa, status=MessageStatus.SENT)
    await draft_of(liisa)  # a fresh draft: not expired
    await Message.filter(id__in=[stale.id, sent.id]).update(created_at=old)

    expired = await drafts.expired(settings)

    assert [message.id for message in expired] == [stale.id]  # not the sent one, not the fresh


# -- releasing a reservation -------------------------------------------------------------------


async def inflight(draft: Message) -> int:
    return (await Message.get(id=draft.id)).inflight_bytes


async def test_a_reservation_released_twice_gives_its_bytes_back_once(settings, senders):
    liisa, _pekka = senders
    draft = await draft_of(liisa)
    reservation = await drafts.reserve(settings, liisa.id, str(draft.id), "fi", 300, 0)
    assert await inflight(draft) == 300

    await reservation.release()
    await reservation.release()
    await reservation.release_inside()

    assert await inflight(draft) == 0  # never below: the limits would count bytes not held


async def test_releasing_holds_the_senders_guard(settings, senders):
    liisa, _pekka = senders
    draft = await draft_of(liisa)
    reservation = await drafts.reserve(settings, liisa.id, str(draft.id), "fi", 300, 0)
    uses = (await Guard.get(key=drafts.guard_of(liisa.id))).uses

    await reservation.release()

    assert (await Guard.get(key=drafts.guard_of(liisa.id))).uses == uses + 1


async def test_a_refused_body_takes_away_only_the_empty_draft_made_for_it(settings, senders):
    liisa, pekka = senders
    others = [await draft_of(pekka), await draft_of(liisa)]  # empty drafts, not made for it
    reservation = await drafts.reserve(settings, liisa.id, None, "fi", 300, 0)
    assert reservation.made_draft

    await reservation.release()

    assert not await Message.exists(id=reservation.draft_id)
    assert {m.id for m in await Message.all()} == {m.id for m in others}


async def test_a_refused_body_keeps_an_existing_empty_draft(settings, senders):
    liisa, _pekka = senders
    draft = await draft_of(liisa)
    reservation = await drafts.reserve(settings, liisa.id, str(draft.id), "fi", 300, 0)
    assert not reservation.made_draft

    await reservation.release()

    assert await Message.exists(id=draft.id)


async def test_a_refused_body_never_takes_away_a_message_sent_meanwhile(settings, senders):
    liisa, _pekka = senders
    reservation = await drafts.reserve(settings, liisa.id, None, "fi", 300, 0)
    # Sent by another request while the body was being received (the bytes still reserved).
    await Message.filter(id=reservation.draft_id).update(status=MessageStatus.SENT)

    await reservation.release()

    assert await Message.exists(id=reservation.draft_id, status=MessageStatus.SENT)


# -- what a closed draft says ------------------------------------------------------------------


async def test_another_senders_draft_is_closed_not_sent_and_names_no_message(senders):
    liisa, pekka = senders
    theirs = await draft_of(pekka)

    with pytest.raises(drafts.DraftClosed) as closed:
        async with drafts.editing(liisa.id, str(theirs.id)):
            pass

    assert closed.value.sent is False
    assert closed.value.message_id is None


async def test_an_own_sent_draft_is_closed_as_sent_with_its_id(senders):
    liisa, _pekka = senders
    sent = await draft_of(liisa, status=MessageStatus.SENT)

    with pytest.raises(drafts.DraftClosed) as closed:
        async with drafts.editing(liisa.id, str(sent.id)):
            pass

    assert closed.value.sent is True
    assert closed.value.message_id == sent.id


async def test_a_refused_body_keeps_the_draft_made_for_it_once_it_holds_other_bytes(
    settings, senders
):
    liisa, _pekka = senders
    first = await drafts.reserve(settings, liisa.id, None, "fi", 300, 0)
    second = await drafts.reserve(settings, liisa.id, str(first.draft_id), "fi", 200, 0)

    await first.release()

    assert first.made_draft and not second.made_draft
    assert (await Message.get(id=first.draft_id)).inflight_bytes == 200


# -- reserving room for a body -----------------------------------------------------------------


async def test_a_body_whose_files_fill_the_room_exactly_is_accepted(settings, senders):
    liisa, _pekka = senders
    draft = await draft_of(liisa, held=400)  # 600 bytes of room under the message limit

    reservation = await drafts.reserve(settings, liisa.id, str(draft.id), "fi", 650, 50)

    assert reservation.size == 600  # its files fit: the framing is no file


async def test_the_framing_of_a_body_is_not_counted_twice(settings, senders):
    liisa, _pekka = senders
    draft = await draft_of(liisa, held=50)  # 950 bytes of room

    reservation = await drafts.reserve(settings, liisa.id, str(draft.id), "fi", 1000, 100)

    assert reservation.size == 950
    with pytest.raises(drafts.NoRoom):
        await drafts.reserve(settings, liisa.id, str(draft.id), "fi", 1000, 0)


async def test_a_body_of_unknown_length_reserves_nothing_when_no_room_is_left(settings, senders):
    liisa, _pekka = senders
    draft = await draft_of(liisa, held=MESSAGE_LIMIT)

    reservation = await drafts.reserve(settings, liisa.id, str(draft.id), "fi", None, 0)

    assert reservation.size == 0
    assert await inflight(draft) == MESSAGE_LIMIT


async def test_a_body_too_big_only_for_the_senders_limit_is_refused_by_that_limit(
    settings, senders
):
    liisa, _pekka = senders
    await draft_of(liisa, held=900)  # 600 bytes left under her limit
    draft = await draft_of(liisa)  # empty: the whole message limit left

    with pytest.raises(drafts.NoRoom) as refused:
        # Exactly the message limit: too big for her limit only.
        await drafts.reserve(settings, liisa.id, str(draft.id), "fi", MESSAGE_LIMIT, 0)

    assert refused.value.limit == "sender"
    assert await inflight(draft) == 0


async def test_a_body_too_big_for_the_message_is_refused_by_the_message_limit(settings, senders):
    liisa, _pekka = senders
    draft = await draft_of(liisa)  # empty; her own limit has room to spare

    with pytest.raises(drafts.NoRoom) as refused:
        await drafts.reserve(settings, liisa.id, str(draft.id), "fi", MESSAGE_LIMIT + 1, 0)

    assert refused.value.limit == "message"  # "the file is too large", not her quota
    assert await inflight(draft) == 0


async def test_a_draft_made_for_a_body_speaks_the_pages_language(settings, senders):
    liisa, _pekka = senders

    reservation = await drafts.reserve(settings, liisa.id, None, "sv", 300, 0)

    assert (await Message.get(id=reservation.draft_id)).locale == "sv"


# -- finding a draft for display ---------------------------------------------------------------


async def test_find_does_not_return_another_draft_of_the_sender_for_an_unknown_id(senders):
    liisa, _pekka = senders
    own = await draft_of(liisa)

    assert await drafts.find(liisa.id, str(uuid.uuid4())) is None
    found = await drafts.find(liisa.id, str(own.id))
    assert found is not None and found.id == own.id


async def test_find_does_not_return_another_senders_draft(senders):
    liisa, pekka = senders
    theirs = await draft_of(pekka)

    assert await drafts.find(liisa.id, str(theirs.id)) is None


async def test_find_does_not_return_a_sent_message_as_a_draft(senders):
    liisa, _pekka = senders
    sent = await draft_of(liisa, status=MessageStatus.SENT)

    assert await drafts.find(liisa.id, str(sent.id)) is None


# -- the room shown and checked ----------------------------------------------------------------


async def attach(message: Message, size: int) -> None:
    await Attachment.create(
        message=message,
        filename="liite.pdf",
        storage_key=uuid.uuid4().hex,
        size=size,
        crc32=0,
        sha256="0" * 64,
    )


async def test_a_sender_without_drafts_has_the_whole_message_limit_of_room(settings, senders):
    liisa, pekka = senders
    await draft_of(pekka, held=900)

    assert await drafts.held_by(None) == 0
    assert await drafts.room(settings, liisa.id, None) == MESSAGE_LIMIT


async def test_a_sender_without_drafts_has_the_whole_sender_limit_when_it_is_the_smaller(
    settings, senders
):
    liisa, _pekka = senders
    smaller = dataclasses.replace(settings, max_draft_bytes_per_sender=MESSAGE_LIMIT - 200)

    assert await drafts.room(smaller, liisa.id, None) == MESSAGE_LIMIT - 200


async def test_room_counts_the_bytes_the_draft_itself_holds(settings, senders):
    liisa, _pekka = senders
    draft = await draft_of(liisa, held=400)

    assert await drafts.room(settings, liisa.id, draft) == MESSAGE_LIMIT - 400


async def test_room_counts_the_senders_other_drafts(settings, senders):
    liisa, _pekka = senders
    await draft_of(liisa, held=900)
    draft = await draft_of(liisa)

    assert await drafts.room(settings, liisa.id, draft) == SENDER_LIMIT - 900


async def test_the_files_of_sent_messages_do_not_count_against_the_sender_limit(settings, senders):
    liisa, _pekka = senders
    sent = await draft_of(liisa, status=MessageStatus.SENT)
    await attach(sent, 900)
    draft = await draft_of(liisa)

    await drafts.ensure_room(settings, draft, MESSAGE_LIMIT)  # no NoRoom
    assert await drafts.room(settings, liisa.id, draft) == MESSAGE_LIMIT
