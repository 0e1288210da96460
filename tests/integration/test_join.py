"""Joining a scheduled meeting: one welcome about one instant, with the schedule read once per join (at a
meeting's start the whole room arrives together)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat.protocol import CloseCode
from chat.services import join_room
from rooms.models import Hand, Holiday, Meeting
from tests.factories import make_room, make_user
from tests.meeting_factories import make_meeting

pytestmark = pytest.mark.django_db

LIVE = datetime(2025, 6, 2, 13, 40, tzinfo=UTC)  # 19:10 in Kolkata: the 19:00 meeting is under way


def test_a_join_during_a_meeting_is_welcomed_with_its_state_queue_and_capacity_from_one_read_of_the_schedule():
    meeting = make_meeting(start=time(19, 0), capacity=30)
    Hand.objects.create(
        room=meeting.room, author_key="u:999", handle="Mina Heron", raised_at=LIVE - timedelta(minutes=2)
    )
    Hand.objects.create(room=meeting.room, author_key="u:998", handle="Old Hand", raised_at=LIVE - timedelta(days=1))
    member = make_user()
    with time_machine.travel(LIVE, tick=False), CaptureQueriesContext(connection) as captured:
        join = join_room(slug=meeting.room.slug, user=member, session=None, resume_after=None)
    assert join.close_code is None and join.welcome is not None
    assert join.welcome["room"]["state"] == "live" and join.welcome["meeting"]["state"] == "live"
    assert join.welcome["meeting"]["sharing"] is True
    assert join.welcome["queue"] == ["Mina Heron"]  # yesterday's hand belongs to yesterday's meeting
    assert join.capacity == 30 and not join.exempt_from_capacity
    meeting_table, holiday_table = Meeting._meta.db_table, Holiday._meta.db_table
    statements = [query["sql"] for query in captured]
    assert sum(f'FROM "{meeting_table}"' in sql for sql in statements) == 1
    assert sum(f'FROM "{holiday_table}"' in sql for sql in statements) == 1


def test_a_join_before_the_doors_open_is_refused_with_when_they_open():
    meeting = make_meeting(start=time(19, 0))
    with time_machine.travel(datetime(2025, 6, 2, 12, 0, tzinfo=UTC), tick=False):  # 17:30 in Kolkata
        join = join_room(slug=meeting.room.slug, user=make_user(), session=None, resume_after=None)
    assert join.welcome is None and join.close_code == CloseCode.NOT_OPEN
    assert join.opens_at == datetime(2025, 6, 2, 13, 20, tzinfo=UTC)  # doors open ten minutes before 19:00


def test_a_join_to_a_room_without_a_schedule_is_live_with_no_capacity():
    room = make_room()
    join = join_room(slug=room.slug, user=make_user(), session=None, resume_after=None)
    assert join.welcome is not None and join.welcome["meeting"]["state"] == "live"
    assert join.capacity is None and join.welcome["queue"] == []
