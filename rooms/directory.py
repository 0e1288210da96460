"""The meeting directory: what is on now and next, in the viewer's zone. Reads only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from rooms.meetingguide import PROGRAMME_TYPES, Programme
from rooms.models import Access, Meeting
from rooms.schedule import Occurrence, Phase, format_for_viewer, get_zone, occurrences_between, zone_label

# Parts of the day, in the viewer's own zone: [start hour, end hour).
TIMES_OF_DAY = {
    "morning": (5, 12),
    "afternoon": (12, 17),
    "evening": (17, 21),
    "night": (21, 29),  # to 05:00 the next morning
}

WHO_FOR = {
    Access.OPEN: "Open: anyone is welcome, guests included.",
    Access.CLOSED: "Closed: for people in recovery (members).",
    Access.FAMILY: "For family members and friends.",
    Access.WOMEN: "For women (by self-attestation).",
}

LANGUAGES = {"en": "English", "hi": "Hindi", "bn": "Bengali", "es": "Spanish", "ne": "Nepali", "ml": "Malayalam"}


@dataclass(frozen=True)
class Entry:
    """One meeting as the directory shows it."""

    meeting: Meeting
    phase: str
    occurrence: Occurrence | None  # the one under way, or the next
    when: str  # the occurrence's start in the viewer's zone, zone named
    doors_open: bool

    @property
    def live_now(self) -> bool:
        return self.phase in (Phase.DOORS_OPEN, Phase.LIVE, Phase.ENDING)


def entry_for(meeting: Meeting, *, now: datetime, viewer_tz: str, holidays: Iterable[date]) -> Entry:
    state = meeting.state_at(now, holidays=holidays)
    under_way = state.phase in (Phase.DOORS_OPEN, Phase.LIVE, Phase.ENDING)
    occurrence = state.occurrence if under_way else state.next_occurrence
    when = format_for_viewer(occurrence.starts_at, viewer_tz) if occurrence else "No upcoming dates"
    return Entry(meeting, str(state.phase), occurrence, when, under_way)


def part_of_day(instant: datetime, viewer_tz: str) -> str:
    hour = instant.astimezone(get_zone(viewer_tz)).hour
    for name, (start, end) in TIMES_OF_DAY.items():
        if start <= hour < end or start <= hour + 24 < end:
            return name
    return "night"


def directory(
    meetings: Iterable[Meeting],
    *,
    now: datetime,
    viewer_tz: str,
    holidays: Iterable[date],
    days_ahead: int,
    time_of_day: str = "",
) -> tuple[list[Entry], list[Entry]]:
    """Return (on now, next within `days_ahead`), each in start order."""
    holidays = list(holidays)
    horizon = now + timedelta(days=days_ahead)
    now_on: list[Entry] = []
    upcoming: list[Entry] = []
    for meeting in meetings:
        entry = entry_for(meeting, now=now, viewer_tz=viewer_tz, holidays=holidays)
        if entry.occurrence is None or entry.occurrence.starts_at >= horizon:
            continue
        if time_of_day and part_of_day(entry.occurrence.starts_at, viewer_tz) != time_of_day:
            continue
        (now_on if entry.live_now else upcoming).append(entry)
    now_on.sort(key=lambda e: e.occurrence.starts_at)  # type: ignore[union-attr]
    upcoming.sort(key=lambda e: e.occurrence.starts_at)  # type: ignore[union-attr]
    return now_on, upcoming


def coming_dates(
    meeting: Meeting, *, now: datetime, viewer_tz: str, holidays: Iterable[date], count: int = 5
) -> list[str]:
    """Return the next few starts in the viewer's zone, zone named."""
    found = occurrences_between(meeting.schedule(holidays=holidays), now, now + timedelta(days=62))
    return [format_for_viewer(occ.starts_at, viewer_tz) for occ in found[:count]]


def meeting_zone_words(meeting: Meeting, *, now: datetime) -> str:
    """Return when the meeting meets in its own words: "19:00 Kolkata time (IST, UTC+05:30)"."""
    return f"{meeting.start_local:%H:%M} {zone_label(meeting.tz, now)}"


def format_names(meeting: Meeting) -> list[str]:
    """Return what the meeting's type codes mean in its programme."""
    try:
        table = PROGRAMME_TYPES[Programme(meeting.room.programme)]
    except ValueError:
        return list(meeting.types)
    return [table.get(code, code) for code in meeting.types]


_DAY_NAMES = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")


def days_words(meeting: Meeting) -> str:
    """Return the repeat rule in words when it is weekly ("Mondays and Thursdays"), else the rule itself."""
    from rooms.schedule import ScheduleError, weekly_days

    try:
        days = weekly_days(meeting.rrule)
    except ScheduleError:
        days = None
    if days is None:
        return f"Repeats: {meeting.rrule}"
    if len(days) == 7:
        return "Every day"
    names = [_DAY_NAMES[day] for day in days]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
