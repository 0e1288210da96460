"""Builders for scheduled meetings (rooms with a Meeting), through the real models."""

from __future__ import annotations

import itertools
from datetime import date, time, timedelta

from rooms.models import Access, Meeting, Programme, Room

_counter = itertools.count(1)


def make_meeting(
    *,
    slug: str | None = None,
    rrule: str = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU",
    start: time = time(19, 0),
    duration: timedelta = timedelta(hours=1),
    tz: str = "Asia/Kolkata",
    dtstart: date = date(2024, 1, 1),
    access: str = Access.OPEN,
    programme: str = Programme.GENERAL,
    types: list[str] | None = None,
    format_text: str = "",
    room_extra: dict | None = None,
    **extra,
) -> Meeting:
    n = next(_counter)
    slug = slug or f"meeting-{n}"
    room = Room.objects.create(
        slug=slug,
        name=f"Meeting {n}",
        access=access,
        programme=programme,
        format_text=format_text,
        **(room_extra or {}),
    )
    return Meeting.objects.create(
        room=room,
        slug=slug,
        rrule=rrule,
        start_local=start,
        duration=duration,
        tz=tz,
        dtstart=dtstart,
        types=types if types is not None else ["O"],
        **extra,
    )
