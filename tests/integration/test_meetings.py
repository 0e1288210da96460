"""Scheduled rooms: who can come in and send, instant by instant, across zones and clock changes."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest

from accounts.services import participant_for
from chat.protocol import ErrorCode, ProtocolError
from chat.services import check_post_message
from rooms.models import Holiday, MeetingException
from rooms.schedule import format_for_viewer
from rooms.services import check_room_access, room_state
from tests.factories import make_user
from tests.meeting_factories import make_meeting

pytestmark = pytest.mark.django_db


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def member():
    user = make_user()
    return participant_for(user=user, session=None)


def send(room, who, now):
    return check_post_message(room=room, participant=who, body="hello", client_id=uuid.uuid4(), now=now)


def test_a_kolkata_meeting_opens_its_doors_ten_minutes_early_and_admits_sharing_only_once_live():
    meeting = make_meeting(start=time(19, 0))  # 13:30 UTC
    room, who = meeting.room, member()
    before_doors = utc(2025, 6, 2, 13, 19)
    waiting = utc(2025, 6, 2, 13, 21)
    live = utc(2025, 6, 2, 13, 30)

    refused = check_room_access(room, who, now=before_doors)
    assert not refused.allowed and refused.close_code == 4409
    assert refused.opens_at == utc(2025, 6, 2, 13, 20)

    assert check_room_access(room, who, now=waiting).allowed
    state = room_state(room, now=waiting)
    assert state.phase == "doors_open" and state.minutes_to_start == 9
    with pytest.raises(ProtocolError) as waiting_room:
        send(room, who, waiting)
    assert waiting_room.value.code == ErrorCode.NOT_ALLOWED

    assert send(room, who, live).created


def test_a_meeting_warns_before_the_end_then_closes_read_only():
    meeting = make_meeting(start=time(19, 0), duration=timedelta(minutes=60))
    room, who = meeting.room, member()
    assert room_state(room, now=utc(2025, 6, 2, 14, 25)).phase == "ending"
    assert send(room, who, utc(2025, 6, 2, 14, 29, 59)).created
    closed = utc(2025, 6, 2, 14, 30)
    assert room_state(room, now=closed).phase == "closed"
    with pytest.raises(ProtocolError):
        send(room, who, closed)
    assert check_room_access(room, who, now=closed).close_code == 4409


def test_a_room_without_a_schedule_is_always_live():
    from tests.factories import make_room

    room = make_room(slug="open-recovery-circle")
    assert room_state(room, now=utc(2025, 1, 1, 3, 0)).phase == "live"


@pytest.mark.parametrize(
    ("now", "phase", "starts_in_kolkata"),
    [
        # Saturday 8 March 2025: New York is on EST (UTC-5); 19:00 there is 05:30 in Kolkata.
        (utc(2025, 3, 8, 23, 50), "doors_open", "Sun 9 Mar, 05:30 IST"),
        (utc(2025, 3, 9, 0, 0), "live", "Sun 9 Mar, 05:30 IST"),
        # Monday 10 March: New York is on EDT (UTC-4); the same 19:00 is 04:30 in Kolkata.
        (utc(2025, 3, 10, 22, 50), "doors_open", "Tue 11 Mar, 04:30 IST"),
        (utc(2025, 3, 10, 23, 0), "live", "Tue 11 Mar, 04:30 IST"),
        (utc(2025, 3, 10, 23, 56), "ending", "Tue 11 Mar, 04:30 IST"),
    ],
)
def test_a_new_york_meeting_seen_from_kolkata_moves_by_an_hour_across_the_us_change(now, phase, starts_in_kolkata):
    meeting = make_meeting(tz="America/New_York", start=time(19, 0))
    state = room_state(meeting.room, now=now)
    assert state.phase == phase
    assert format_for_viewer(state.starts_at, "Asia/Kolkata") == starts_in_kolkata


@pytest.mark.parametrize(
    ("now", "phase"),
    [
        (utc(2025, 3, 29, 19, 20), "doors_open"),  # Saturday, GMT: 19:30 London is 19:30 UTC
        (utc(2025, 3, 29, 19, 30), "live"),
        (utc(2025, 3, 30, 18, 20), "doors_open"),  # Sunday, BST: 19:30 London is 18:30 UTC
        (utc(2025, 3, 30, 19, 20), "live"),  # a GMT reading would still be "doors open" here
        (utc(2025, 3, 30, 19, 30), "closed"),
    ],
)
def test_a_london_meeting_keeps_its_local_time_across_the_uk_change(now, phase):
    meeting = make_meeting(tz="Europe/London", start=time(19, 30), duration=timedelta(hours=1))
    assert room_state(meeting.room, now=now).phase == phase


def test_a_cancelled_date_stays_closed_and_a_moved_date_opens_at_its_new_time():
    meeting = make_meeting(start=time(19, 0))
    MeetingException.objects.create(meeting=meeting, local_date=date(2025, 6, 2))
    MeetingException.objects.create(
        meeting=meeting, local_date=date(2025, 6, 3), moved_to=utc(2025, 6, 3, 4, 30), note="Morning, for Eid"
    )
    room = meeting.room
    assert room_state(room, now=utc(2025, 6, 2, 13, 40)).phase == "closed"
    assert room_state(room, now=utc(2025, 6, 3, 4, 40)).phase == "live"
    assert room_state(room, now=utc(2025, 6, 3, 13, 40)).phase == "closed"
    assert room_state(room, now=utc(2025, 6, 4, 13, 40)).phase == "live"


def test_a_holiday_closes_meetings_that_observe_it_and_not_the_others():
    Holiday.objects.create(date=date(2025, 10, 2), name="Gandhi Jayanti")
    observing = make_meeting(start=time(19, 0))
    open_anyway = make_meeting(start=time(19, 0), observes_holidays=False)
    during = utc(2025, 10, 2, 13, 40)
    assert room_state(observing.room, now=during).phase == "closed"
    assert room_state(open_anyway.room, now=during).phase == "live"


def test_doors_open_in_several_zones_at_their_own_local_times():
    now = utc(2025, 7, 1, 12, 50)  # 18:20 Kolkata, 18:35 Kathmandu, 22:50 Sydney, 08:50 New York
    kolkata = make_meeting(tz="Asia/Kolkata", start=time(18, 30))
    kathmandu = make_meeting(tz="Asia/Kathmandu", start=time(18, 45))
    sydney = make_meeting(tz="Australia/Sydney", start=time(23, 0))
    new_york = make_meeting(tz="America/New_York", start=time(9, 0))
    not_yet = make_meeting(tz="Europe/London", start=time(14, 0))  # 13:00 UTC in BST: doors at 12:50... exactly
    assert [room_state(m.room, now=now).phase for m in (kolkata, kathmandu, sydney, new_york, not_yet)] == [
        "doors_open",
        "doors_open",
        "doors_open",
        "doors_open",
        "doors_open",
    ]
    assert room_state(not_yet.room, now=now - timedelta(seconds=1)).phase == "closed"


@pytest.mark.parametrize("hour", [0, 3, 7, 12, 18, 23])
def test_the_demo_always_has_a_scheduled_meeting_live_at_any_hour(hour):
    import io

    import time_machine
    from django.core.management import call_command

    from rooms.models import Meeting, Room

    with time_machine.travel(datetime(2025, 3, 9, hour, 59, 30, tzinfo=UTC), tick=False):
        call_command("seed_demo", stdout=io.StringIO())
        call_command("seed_demo", stdout=io.StringIO())  # idempotent
        now = datetime(2025, 3, 9, hour, 59, 30, tzinfo=UTC)
        live = [m.slug for m in Meeting.objects.all() if room_state(m.room, now=now).phase in ("live", "ending")]
        assert "round-the-clock-checkin" in live
        assert room_state(Room.objects.get(slug="open-recovery-circle"), now=now).phase == "live"
        assert not Meeting.objects.filter(room__slug="open-recovery-circle").exists()
        assert Meeting.objects.count() == 6
