"""A batch to rooms whose rules were read by an earlier batch is written without reading them again (PostgreSQL):
its write checks them on the rows it locks. Every change a chair, a moderator or the schedule makes in between
must still hold for the very next batch, as it did when the rules were read for every batch."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.services import participant_for
from chat.models import Message
from chat.protocol import ErrorCode, ProtocolError
from chat.services import SendIntent, post_messages
from moderation import services as moderation
from moderation.models import Flag, Restriction
from rooms.models import Meeting, Room
from tests.factories import make_room, make_user

pytestmark = pytest.mark.django_db

# 03:00 in Kolkata: outside the 19:00 meeting that `a_schedule_closed_now` gives a room.
NOW = datetime(2026, 12, 7, 21, 30, tzinfo=UTC)
CRISIS = "I want to kill myself tonight, I have the pills ready"
MODERATOR = moderation.Participant(handle="Mod", author_key="u:0", roles=frozenset({"moderator"}))


def member():
    return participant_for(user=make_user(), session=None)


def intent(room, who, body="hello"):
    return SendIntent(room=room, participant=who, body=body, client_id=uuid.uuid4())


def locked(room, author):
    Room.objects.filter(pk=room.pk).update(locked=True)


def sharing_closed(room, author):
    Room.objects.filter(pk=room.pk).update(sharing_open=False)


def a_schedule_closed_now(room, author):
    Meeting.objects.create(
        room=room, slug=f"m-{room.pk}", rrule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU", start_local=time(19, 0),
        duration=timedelta(hours=1), tz="Asia/Kolkata", dtstart=date(2024, 1, 1), types=["O"],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (locked, ErrorCode.LOCKED),
        (sharing_closed, ErrorCode.NOT_ALLOWED),
        (a_schedule_closed_now, ErrorCode.NOT_ALLOWED),
    ],
)
def test_a_room_closed_after_a_batch_refuses_the_next_one(change, code):
    room = make_room()
    ana, ben = member(), member()
    assert post_messages([intent(room, ana, "first")], now=NOW)[0].created  # its rules read, and known
    change(room, ana)
    outcomes = post_messages([intent(room, ana, "second"), intent(room, ben, "third")], now=NOW)
    assert [o.code for o in outcomes] == [code, code]
    assert list(Message.objects.filter(room=room).values_list("body", flat=True)) == ["first"]


def test_slow_mode_set_after_a_batch_holds_for_the_next_one():
    room = make_room()
    ana = member()
    assert post_messages([intent(room, ana, "first")], now=NOW)[0].created
    Room.objects.filter(pk=room.pk).update(slow_mode_seconds=60)
    outcomes = post_messages([intent(room, ana, "second"), intent(room, ana, "third")], now=NOW)
    assert outcomes[0].created
    assert isinstance(outcomes[1], ProtocolError) and outcomes[1].code == ErrorCode.RATE_LIMITED
    assert "Slow mode" in outcomes[1].detail


@pytest.mark.parametrize("site_wide", [False, True])
def test_someone_muted_after_a_batch_is_refused_and_the_rest_of_the_room_is_stored_in_order(site_wide):
    room, other = make_room(), make_room()
    ana, ben = member(), member()
    assert all(o.created for o in post_messages([intent(room, ana, "a"), intent(other, ben, "b")], now=NOW))
    if site_wide:
        Restriction.objects.create(
            kind=Restriction.Kind.MUTE, author_key=ana.author_key, room=None, until=NOW + timedelta(minutes=5),
            created_by_key="u:0",
        )  # fmt: skip
    else:
        moderation.do_mute(
            room=room, actor=MODERATOR, target=moderation.Target(author_key=ana.author_key, handle=ana.handle), minutes=5,
            now=NOW,
        )  # fmt: skip
    outcomes = post_messages(
        [intent(room, ben, "one"), intent(room, ana, "not me"), intent(room, ben, "two"), intent(other, ana, "there")],
        now=NOW,
    )
    assert outcomes[1].code == ErrorCode.MUTED
    assert [o.message.seq for o in (outcomes[0], outcomes[2])] == [2, 3]  # no number skipped for the refusal
    assert list(Message.objects.filter(room=room).order_by("seq").values_list("body", flat=True)) == ["a", "one", "two"]
    if site_wide:
        assert outcomes[3].code == ErrorCode.MUTED
    else:
        assert outcomes[3].created and outcomes[3].message.seq == 2  # muted in one room, not the other


def test_a_mute_that_ended_no_longer_refuses():
    room = make_room()
    ana = member()
    moderation.do_mute(
        room=room, actor=MODERATOR, target=moderation.Target(author_key=ana.author_key, handle=ana.handle), minutes=5,
        now=NOW,
    )  # fmt: skip
    assert post_messages([intent(room, ana, "now?")], now=NOW)[0].code == ErrorCode.MUTED
    assert post_messages([intent(room, ana, "later")], now=NOW + timedelta(minutes=6))[0].created


def test_a_room_deleted_after_a_batch_refuses_the_next_one_and_the_other_rooms_are_stored():
    room, doomed = make_room(), make_room()
    ana = member()
    assert all(o.created for o in post_messages([intent(room, ana, "a"), intent(doomed, ana, "b")], now=NOW))
    Room.objects.filter(pk=doomed.pk).delete()
    outcomes = post_messages([intent(doomed, ana, "into the void"), intent(room, ana, "still here")], now=NOW)
    assert outcomes[0].code == ErrorCode.NOT_FOUND
    assert outcomes[1].created and outcomes[1].message.seq == 2


def test_a_room_reopened_after_a_batch_was_refused_takes_the_next_one():
    room = make_room()
    Room.objects.filter(pk=room.pk).update(locked=True)
    ana = member()
    assert post_messages([intent(room, ana, "knock")], now=NOW)[0].code == ErrorCode.LOCKED
    Room.objects.filter(pk=room.pk).update(locked=False)
    assert post_messages([intent(room, ana, "open now")], now=NOW)[0].created


def test_a_retry_in_a_batch_to_known_rooms_gets_its_stored_copy_and_the_new_send_is_stored():
    room = make_room()
    ana = member()
    first = intent(room, ana, "first")
    assert post_messages([first], now=NOW)[0].created
    again = post_messages([first, intent(room, ana, "second")], now=NOW)
    assert (again[0].created, again[0].message.seq) == (False, 1)
    assert (again[1].created, again[1].message.seq) == (True, 2)
    assert Message.objects.filter(room=room).count() == 2


def test_a_batch_to_known_rooms_is_one_statement():
    if connection.vendor != "postgresql":
        pytest.skip("the rules are read for every batch except on PostgreSQL, where the write can check them")
    room = make_room()
    ana = member()
    post_messages([intent(room, ana, "first")], now=NOW)
    with CaptureQueriesContext(connection) as captured:
        assert post_messages([intent(room, ana, "second")], now=NOW)[0].created
    writes = [q["sql"] for q in captured if "SAVEPOINT" not in q["sql"]]
    assert len(writes) == 1 and "INSERT" in writes[0]


@pytest.mark.parametrize("change", [locked, "muted"])
def test_someone_over_the_rate_in_a_room_closed_to_them_since_hears_why_it_is_closed(settings, change):
    # Over the rate and refused by the rules: "muted" or "locked" tells them what "slow down" would not.
    settings.SAATHI_SEND_RATE = "2/minute"
    room = make_room()
    ana, ben = member(), member()
    assert all(o.created for o in post_messages([intent(room, ana, "one"), intent(room, ana, "two")], now=NOW))
    if change == "muted":
        moderation.do_mute(
            room=room, actor=MODERATOR, target=moderation.Target(author_key=ana.author_key, handle=ana.handle),
            minutes=5, now=NOW,
        )  # fmt: skip
        code = ErrorCode.MUTED
    else:
        change(room, ana)
        code = ErrorCode.LOCKED
    outcomes = post_messages([intent(room, ana, "three"), intent(room, ben, "hi")], now=NOW)
    assert outcomes[0].code == code
    if change == "muted":
        assert outcomes[1].created and outcomes[1].message.seq == 3  # the room is still open to everyone else


def test_someone_over_the_rate_in_a_known_room_is_told_to_slow_down_and_the_rest_is_stored(settings):
    settings.SAATHI_SEND_RATE = "1/minute"
    room = make_room()
    ana, ben = member(), member()
    assert post_messages([intent(room, ana, "one")], now=NOW)[0].created
    outcomes = post_messages([intent(room, ana, "two"), intent(room, ben, "hi")], now=NOW)
    assert outcomes[0].code == ErrorCode.RATE_LIMITED
    assert outcomes[1].created and outcomes[1].message.seq == 2


def test_a_crisis_message_to_a_known_room_raises_its_flag_and_each_message_is_scanned_once(monkeypatch):
    # On known rules the batch is scanned before the write; a crisis in it sends the batch the careful way
    # (rules read, one transaction with the flag), and that way takes the scan it already has.
    room = make_room()
    ana, ben = member(), member()
    assert post_messages([intent(room, ana, "first")], now=NOW)[0].created
    scanned: list[str] = []
    assess = moderation.assess
    monkeypatch.setattr(moderation, "assess", lambda body: scanned.append(body) or assess(body))
    outcomes = post_messages([intent(room, ben, "good morning all"), intent(room, ana, CRISIS)], now=NOW)
    assert [o.message.seq for o in outcomes] == [2, 3]
    assert list(Flag.objects.values_list("message_id", flat=True)) == [outcomes[1].message.pk]
    assert sorted(scanned) == sorted(["good morning all", CRISIS])
