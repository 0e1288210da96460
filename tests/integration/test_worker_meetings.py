"""The worker opens and closes meeting rooms: each change announced once, however often it runs."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection, connections
from django.utils.module_loading import import_string

from chat import broadcast
from config.worker import run_once
from rooms.models import Meeting
from rooms.services import open_and_close_meetings, room_state
from tests.meeting_factories import make_meeting


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def published(monkeypatch):
    """Collect the frames published to rooms (after commit), as (room group, frame)."""
    sent: list[tuple[str, dict]] = []
    lock = threading.Lock()

    def record(group, event):
        with lock:
            if event.get("text"):
                sent.append((group, json.loads(event["text"])))

    monkeypatch.setattr(broadcast, "_publish", record)
    return sent


def notices(sent, slug=None):
    return [
        frame["code"]
        for group, frame in sent
        if frame["type"] == "notice" and (slug is None or group == broadcast.room_group(slug))
    ]


@pytest.mark.django_db
def test_each_change_of_phase_is_announced_once_however_often_the_worker_runs(
    published, django_capture_on_commit_callbacks
):
    meeting = make_meeting(start=time(19, 0))  # 13:30 UTC
    instants = [
        utc(2025, 6, 2, 13, 21),  # doors open
        utc(2025, 6, 2, 13, 22),
        utc(2025, 6, 2, 13, 30),  # live
        utc(2025, 6, 2, 14, 26),  # ending soon
        utc(2025, 6, 2, 14, 30),  # closed
        utc(2025, 6, 2, 14, 31),
    ]
    counts = []
    for now in instants:
        with django_capture_on_commit_callbacks(execute=True):
            counts.append(open_and_close_meetings(now=now))
        with django_capture_on_commit_callbacks(execute=True):
            counts.append(open_and_close_meetings(now=now))  # a second run at the same instant does nothing
    assert counts == [1, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0]
    assert notices(published, meeting.slug) == ["starts_soon", "live", "ending", "closed"]
    doors = next(f for _, f in published if f.get("code") == "starts_soon")
    assert (
        doors["text"] == "Doors are open. The meeting starts in 9 minutes."
        and doors["starts_at"] == "2025-06-02T13:30:00Z"
    )
    states = [f["state"] for _, f in published if f["type"] == "meeting"]
    assert states == ["doors_open", "live", "ending", "closed"]


@pytest.mark.django_db
def test_a_late_worker_does_not_change_what_people_see(published, django_capture_on_commit_callbacks):
    meeting = make_meeting(start=time(19, 0))
    # The worker has not run at all today: the room is live from the schedule anyway.
    assert room_state(meeting.room, now=utc(2025, 6, 2, 13, 45)).phase == "live"
    with django_capture_on_commit_callbacks(execute=True):
        assert open_and_close_meetings(now=utc(2025, 6, 2, 13, 45)) == 1
    assert notices(published) == ["live"]  # it catches up with one notice, not the ones it missed


@pytest.mark.django_db(transaction=True)  # the loop closes stale connections between steps
def test_the_worker_step_is_in_the_default_worker_loop(published, settings):
    make_meeting(start=time(19, 0))
    assert "rooms.services.open_and_close_meetings" in settings.SAATHI_WORKER_STEPS
    name = "rooms.services.open_and_close_meetings"
    done = run_once(now=utc(2025, 6, 2, 13, 25), steps=[(name, import_string(name))])
    assert done[name] == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_never_open_the_same_meeting_twice(published):
    if connection.vendor != "postgresql":
        pytest.skip("row locks (select_for_update skip_locked) only hold on PostgreSQL")
    meetings = [make_meeting(start=time(19, 0)) for _ in range(40)]
    now = utc(2025, 6, 2, 13, 25)
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(open_and_close_meetings(now=now))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sum(results) == len(meetings)
    opened = notices(published)
    assert opened.count("starts_soon") == len(meetings)
    assert len({group for group, frame in published if frame.get("code") == "starts_soon"}) == len(meetings)
    assert set(Meeting.objects.values_list("applied_phase", flat=True)) == {"doors_open"}


@pytest.mark.django_db
def test_a_new_meeting_starts_with_an_empty_queue(published, django_capture_on_commit_callbacks):
    from accounts.services import participant_for
    from rooms.services import do_raise_hand, queue_handles
    from tests.factories import make_user

    meeting = make_meeting(start=time(19, 0))
    who = participant_for(user=make_user(handle="Asha Lotus"), session=None)
    monday_live = utc(2025, 6, 2, 13, 40)
    with django_capture_on_commit_callbacks(execute=True):
        do_raise_hand(room=meeting.room, participant=who, up=True, now=monday_live)
    assert queue_handles(meeting.room, now=monday_live) == ["Asha Lotus"]
    tuesday = monday_live + timedelta(days=1)
    assert queue_handles(meeting.room, now=tuesday) == []  # even before the worker runs
    with django_capture_on_commit_callbacks(execute=True):
        open_and_close_meetings(now=tuesday)
    assert queue_handles(meeting.room, now=tuesday) == []
