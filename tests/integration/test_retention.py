"""Retention: each room's window is enforced by the worker; past it, message rows are gone."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import GuestPass
from accounts.services import participant_for, purge_idle_guest_passes
from chat.models import Message
from chat.services import check_post_message, purge_expired_messages
from config.worker import run_once
from rooms.models import Retention
from tests.factories import make_room, make_user

pytestmark = pytest.mark.django_db


def post(room, user, body):
    return check_post_message(
        room=room, participant=participant_for(user=user, session=None), body=body, client_id=uuid.uuid4()
    ).message


def test_messages_past_the_rooms_window_are_deleted_and_newer_ones_kept():
    day_room = make_room(retention_hours=Retention.DAY)
    week_room = make_room(retention_hours=Retention.WEEK)
    user = make_user()
    now = timezone.now()
    old_in_day_room = post(day_room, user, "two days old")
    old_in_week_room = post(week_room, user, "two days old too")
    Message.objects.filter(pk__in=[old_in_day_room.pk, old_in_week_room.pk]).update(created_at=now - timedelta(days=2))
    fresh = post(day_room, user, "just now")

    assert purge_expired_messages(now=now) == 1
    assert set(Message.objects.values_list("body", flat=True)) == {"two days old too", "just now"}
    assert purge_expired_messages(now=now) == 0  # idempotent
    assert fresh.seq == 2  # numbering carries on after a purge


@pytest.mark.django_db(transaction=True)  # the worker closes old connections between steps, as in production
def test_the_worker_runs_retention_with_the_other_steps():
    room = make_room(retention_hours=Retention.DAY)
    message = post(room, make_user(), "old")
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(days=3))
    done = run_once()
    assert done["chat.services.purge_expired_messages"] == 1
    assert not Message.objects.exists()


def test_idle_guest_seats_are_forgotten_so_handles_come_free(settings):
    GuestPass.objects.create(token="a", handle="Idle One", handle_key="idieone")
    GuestPass.objects.create(token="b", handle="Busy One", handle_key="busyone")
    GuestPass.objects.filter(token="a").update(
        last_seen_at=timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE + 60)
    )
    assert purge_idle_guest_passes(now=timezone.now()) == 1
    assert list(GuestPass.objects.values_list("handle", flat=True)) == ["Busy One"]
