"""Meeting recurrence, time zones and the meeting lifecycle, as pure functions.

No Django here: services and the worker call these with `now` passed in, so every decision can be
tested at an exact instant. Recurrence is python-dateutil's RRULE engine; zones are zoneinfo.

How wall-clock time is resolved (this is the part that is easy to get wrong):

* A meeting is "19:00 in its own zone" on every date of the series. The series is generated in naive
  local wall time and each date is then placed in the zone, so a New York meeting stays at 19:00 New
  York time across the US clock changes and moves by an hour when seen from Kolkata.
* A wall time that does not exist (the spring-forward gap, e.g. 02:30 in New York on the second Sunday
  of March) is pushed forward by the length of the gap: 02:30 becomes 03:30 EDT. That is what
  ``fold=0`` means for a gap time under PEP 495, and it is what people do: the clocks jumped, the
  meeting starts "an hour later" by the clock on the wall.
* A wall time that happens twice (the autumn fold, e.g. 01:30 in New York on the first Sunday of
  November) resolves to the first of the two instants (``fold=0``, still daylight time).
* ``duration`` is elapsed time: a two-hour meeting lasts two real hours even across a clock change.

Every datetime returned is aware and in UTC. A date (``local_date``, ``cancelled``, keys of ``moved``)
is always a date in the meeting's own zone.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule as _RRule
from dateutil.rrule import rrulestr

__all__ = [
    "DEFAULT_TZ",
    "MeetingState",
    "Occurrence",
    "Phase",
    "Schedule",
    "ScheduleError",
    "format_for_viewer",
    "get_zone",
    "local_to_utc",
    "monthly_rrule",
    "next_occurrence",
    "occurrences_between",
    "state_at",
    "validate_rrule",
    "weekly_days",
    "weekly_rrule",
    "zone_label",
]

DEFAULT_TZ = "Asia/Kolkata"

# Python's weekday numbers (0 = Monday) as iCalendar BYDAY codes.
_BYDAY = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Meetings repeat by the day at most. A rule that repeats by the hour or minute would flood the
# calendar and the worker, and the start time comes from `start_local`, not from the rule.
_ALLOWED_FREQ = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_KNOWN_PARTS = frozenset(
    {
        "FREQ",
        "INTERVAL",
        "COUNT",
        "UNTIL",
        "BYDAY",
        "BYMONTHDAY",
        "BYYEARDAY",
        "BYWEEKNO",
        "BYMONTH",
        "BYSETPOS",
        "WKST",
        "BYHOUR",
        "BYMINUTE",
        "BYSECOND",
    }
)
_TIME_PARTS = frozenset({"BYHOUR", "BYMINUTE", "BYSECOND"})
_BYDAY_ITEM = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_UNTIL_VALUE = re.compile(r"^\d{8}(T\d{6})?$")

# The rule engine works in naive local time; local -> UTC can shift by the zone's offset plus a DST
# change (Samoa once skipped a whole day), so windows are widened by this much and then cut exactly.
_MARGIN = timedelta(days=2)
# How far back `state_at` looks for the meeting that ended last, widening until one is found.
_LOOKBACKS = (timedelta(days=8), timedelta(days=64), timedelta(days=800))


class ScheduleError(ValueError):
    """A schedule that cannot be used, with a sentence a person can read."""


def get_zone(tz: str) -> ZoneInfo:
    """Return the zone for an IANA name, or raise ScheduleError."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ScheduleError(f"{tz!r} is not a time zone name Saathi knows, such as 'Asia/Kolkata'.") from None


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ScheduleError(f"{what} must carry a time zone; got the naive time {value.isoformat()}.")


def local_to_utc(wall: datetime, tz: str | ZoneInfo) -> datetime:
    """Place a naive wall-clock time in a zone and return it in UTC.

    A time in the spring-forward gap moves forward by the gap; a time in the autumn fold takes the
    first of its two instants (see the module docstring).
    """
    zone = tz if isinstance(tz, ZoneInfo) else get_zone(tz)
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def validate_rrule(text: str) -> str:
    """Return the rule normalised (upper case, no "RRULE:" prefix), or raise ScheduleError."""
    return _validate_rrule(text)


@lru_cache(maxsize=1024)
def _validate_rrule(text: str) -> str:
    body = (text or "").strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    body = body.strip().rstrip(";").upper()
    if not body:
        raise ScheduleError("The repeat rule is empty; say how often the meeting repeats, e.g. FREQ=WEEKLY.")
    if "\n" in body or "DTSTART" in body or "EXDATE" in body or "RDATE" in body:
        raise ScheduleError(
            "The repeat rule must be a single RRULE line; the first date, cancelled and extra dates are set separately."
        )
    parts: dict[str, str] = {}
    for chunk in body.split(";"):
        name, sep, value = chunk.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ScheduleError(f"{chunk!r} in the repeat rule should look like NAME=VALUE, e.g. FREQ=WEEKLY.")
        if name not in _KNOWN_PARTS:
            raise ScheduleError(f"{name!r} is not part of a repeat rule (RFC 5545 RRULE).")
        if name in parts:
            raise ScheduleError(f"{name} appears twice in the repeat rule.")
        parts[name] = value
    freq = parts.get("FREQ")
    if freq is None:
        raise ScheduleError("The repeat rule needs FREQ, e.g. FREQ=WEEKLY.")
    if freq not in _ALLOWED_FREQ:
        raise ScheduleError(f"Meetings can repeat daily, weekly, monthly or yearly; FREQ={freq} is not one of those.")
    if _TIME_PARTS & parts.keys():
        raise ScheduleError("The start time is set separately; remove BYHOUR, BYMINUTE and BYSECOND.")
    if "COUNT" in parts and "UNTIL" in parts:
        raise ScheduleError("A repeat rule can end after a number of meetings (COUNT) or on a date (UNTIL), not both.")
    for number_part in ("INTERVAL", "COUNT"):
        number = parts.get(number_part)
        if number is not None and (not number.isdigit() or int(number) < 1):
            raise ScheduleError(f"{number_part} must be a whole number of at least 1; got {number!r}.")
    if "UNTIL" in parts and not _UNTIL_VALUE.match(parts["UNTIL"]):
        raise ScheduleError(
            "UNTIL must be a local date like 20251231 (or 20251231T235959) without a Z: the series is "
            "read in the meeting's own zone."
        )
    byday = parts["BYDAY"].split(",") if "BYDAY" in parts else []
    for item in byday:
        match = _BYDAY_ITEM.match(item.strip())
        if match is None:
            raise ScheduleError(f"{item!r} is not a weekday; use MO, TU, WE, TH, FR, SA or SU (e.g. 1SU, -1FR).")
        if match.group(1) is not None and freq not in ("MONTHLY", "YEARLY"):
            raise ScheduleError(f"{item} (a numbered weekday) only makes sense with FREQ=MONTHLY or FREQ=YEARLY.")
    if "UNTIL" in parts and "T" not in parts["UNTIL"]:
        # A bare UNTIL date would mean midnight at its start and drop an evening meeting on that
        # very date; people mean "up to and including", so the rule says so explicitly.
        parts["UNTIL"] += "T235959"
        body = ";".join(f"{name}={value}" for name, value in parts.items())
    try:
        rule = rrulestr(f"RRULE:{body}", dtstart=datetime(2000, 1, 1))
        first = next(iter(rule), None)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ScheduleError(f"The repeat rule {body!r} cannot be read: {exc}.") from None
    if first is None and "COUNT" not in parts and "UNTIL" not in parts:
        raise ScheduleError(f"The repeat rule {body!r} never produces a date (e.g. 30 February).")
    return body


def weekly_rrule(days: Iterable[int], *, interval: int = 1) -> str:
    """Return a weekly RRULE body for Python weekdays (0 = Monday .. 6 = Sunday)."""
    chosen = sorted(set(days))
    if not chosen:
        raise ScheduleError("Choose at least one day of the week.")
    if any(not isinstance(day, int) or isinstance(day, bool) or not 0 <= day <= 6 for day in chosen):
        raise ScheduleError(f"Days of the week are 0 (Monday) to 6 (Sunday); got {chosen}.")
    if interval < 1:
        raise ScheduleError("A meeting repeats every 1 or more weeks.")
    body = "FREQ=WEEKLY;BYDAY=" + ",".join(_BYDAY[day] for day in chosen)
    return body if interval == 1 else f"{body};INTERVAL={interval}"


def monthly_rrule(weekday: int, nth: int) -> str:
    """Return a rule for the nth weekday of each month (nth 1..4, or -1 for the last)."""
    if not 0 <= weekday <= 6:
        raise ScheduleError(f"Days of the week are 0 (Monday) to 6 (Sunday); got {weekday}.")
    if nth not in (1, 2, 3, 4, -1):
        raise ScheduleError("Choose the 1st, 2nd, 3rd, 4th or last weekday of the month.")
    return f"FREQ=MONTHLY;BYDAY={nth}{_BYDAY[weekday]}"


def weekly_days(text: str) -> tuple[int, ...] | None:
    """Return the Python weekdays of a plain every-week rule, or None for any other rule.

    The Meeting Guide feed lists weekly meetings only; this says whether a schedule fits it.
    """
    body = validate_rrule(text)
    parts = dict(chunk.split("=", 1) for chunk in body.split(";"))
    if parts.pop("FREQ") != "WEEKLY" or parts.pop("INTERVAL", "1") != "1":
        return None
    parts.pop("WKST", None)
    byday = parts.pop("BYDAY", None)
    if parts or byday is None:
        return None
    return tuple(sorted(_BYDAY.index(item) for item in byday.split(",")))


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """A meeting's recurrence in its own zone, with cancelled and moved dates."""

    rrule: str
    start_local: time
    duration: timedelta
    tz: str = DEFAULT_TZ
    dtstart: date
    until: date | None = None
    doors_open: timedelta = timedelta(minutes=10)
    ending_notice: timedelta = timedelta(minutes=5)
    cancelled: frozenset[date] = frozenset()
    # Local date of the series -> the new aware start. The occurrence keeps its series date as
    # `local_date`, so a moved meeting is still "the 26 Jan meeting" to the worker and the calendar.
    moved: Mapping[date, datetime] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "rrule", validate_rrule(self.rrule))
        get_zone(self.tz)
        if self.start_local.tzinfo is not None:
            raise ScheduleError("The start time is a wall-clock time in the meeting's zone; leave tzinfo off it.")
        if not timedelta(0) < self.duration <= timedelta(hours=24):
            raise ScheduleError("A meeting lasts more than zero minutes and at most a day.")
        if self.doors_open < timedelta(0) or self.ending_notice < timedelta(0):
            raise ScheduleError("Doors-open and ending-notice times cannot be negative.")
        if self.ending_notice >= self.duration:
            raise ScheduleError("The ending notice must come after the meeting has started.")
        if self.until is not None and self.until < self.dtstart:
            raise ScheduleError("The series cannot end before its first date.")
        object.__setattr__(self, "cancelled", frozenset(self.cancelled))
        moved = MappingProxyType(dict(self.moved))
        object.__setattr__(self, "moved", moved)
        for day, new_start in moved.items():
            _require_aware(new_start, f"The new start for {day.isoformat()}")
            if day in self.cancelled:
                raise ScheduleError(f"{_date_words(day)} is both cancelled and moved; choose one.")
            if not self._is_series_date(day):
                raise ScheduleError(f"{_date_words(day)} is not a date of this series, so it cannot be moved.")

    @property
    def zone(self) -> ZoneInfo:
        """Return the meeting's zone."""
        return get_zone(self.tz)

    def _rule(self) -> _RRule:
        return _compiled_rule(self.rrule, datetime.combine(self.dtstart, self.start_local))

    def _is_series_date(self, day: date) -> bool:
        if day < self.dtstart or (self.until is not None and day > self.until):
            return False
        start = datetime.combine(day, time.min)
        return bool(self._rule().between(start - timedelta(microseconds=1), start + timedelta(days=1)))


@lru_cache(maxsize=512)
def _compiled_rule(body: str, dtstart: datetime) -> _RRule:
    # cache=True makes repeated look-ups of a long-running series cheap; dateutil locks its cache.
    rule = rrulestr(f"RRULE:{body}", dtstart=dtstart, cache=True)
    assert isinstance(rule, _RRule)
    return rule


@dataclass(frozen=True)
class Occurrence:
    """One meeting of a series; every instant is aware UTC."""

    starts_at: datetime
    ends_at: datetime
    doors_open_at: datetime
    ending_notice_at: datetime
    local_date: date


class Phase(StrEnum):
    """Where a meeting room is in its lifecycle."""

    SCHEDULED = "scheduled"
    DOORS_OPEN = "doors_open"
    LIVE = "live"
    ENDING = "ending"
    CLOSED = "closed"


@dataclass(frozen=True)
class MeetingState:
    """The phase at an instant, the occurrence it is about and the next one to come."""

    phase: Phase
    occurrence: Occurrence | None
    next_occurrence: Occurrence | None
    minutes_to_start: int | None


def _occurrence(schedule: Schedule, starts_at: datetime, local_date: date) -> Occurrence:
    ends_at = starts_at + schedule.duration
    return Occurrence(
        starts_at=starts_at,
        ends_at=ends_at,
        doors_open_at=starts_at - schedule.doors_open,
        ending_notice_at=ends_at - schedule.ending_notice,
        local_date=local_date,
    )


def _moved_occurrences(schedule: Schedule) -> list[Occurrence]:
    return sorted(
        (_occurrence(schedule, new_start.astimezone(UTC), day) for day, new_start in schedule.moved.items()),
        key=lambda occ: occ.starts_at,
    )


def _regular(schedule: Schedule, walls: Iterable[datetime]) -> Iterator[Occurrence]:
    """Yield the series dates that are neither cancelled nor moved, in order."""
    zone = schedule.zone
    for wall in walls:
        day = wall.date()
        if schedule.until is not None and day > schedule.until:
            return
        if day in schedule.cancelled or day in schedule.moved:
            continue
        yield _occurrence(schedule, local_to_utc(wall, zone), day)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def occurrences_between(schedule: Schedule, start: datetime, end: datetime) -> list[Occurrence]:
    """Return the occurrences that start at or after `start` and before `end`, in order."""
    _require_aware(start, "start")
    _require_aware(end, "end")
    if end <= start:
        return []
    zone = schedule.zone
    walls = schedule._rule().between(_wall(start, zone) - _MARGIN, _wall(end, zone) + _MARGIN, inc=True)
    found = [occ for occ in _regular(schedule, walls) if start <= occ.starts_at < end]
    found += [occ for occ in _moved_occurrences(schedule) if start <= occ.starts_at < end]
    return sorted(found, key=lambda occ: occ.starts_at)


def _starting_after(schedule: Schedule, instant: datetime) -> Iterator[Occurrence]:
    """Yield every occurrence that starts strictly after `instant`, in order."""
    walls = schedule._rule().xafter(_wall(instant, schedule.zone) - _MARGIN, inc=True)
    regular = (occ for occ in _regular(schedule, walls) if occ.starts_at > instant)
    moved = (occ for occ in _moved_occurrences(schedule) if occ.starts_at > instant)
    return heapq.merge(regular, moved, key=lambda occ: occ.starts_at)


def next_occurrence(schedule: Schedule, now: datetime) -> Occurrence | None:
    """Return the occurrence under way at `now` (doors open to end), else the next one, else None."""
    _require_aware(now, "now")
    # An occurrence has not ended yet exactly when it started less than one duration ago.
    for occ in _starting_after(schedule, now - schedule.duration):
        if occ.ends_at > now:
            return occ
    return None


def _last_ended(schedule: Schedule, now: datetime) -> Occurrence | None:
    """Return the occurrence that ended most recently at or before `now`."""
    bound = now - schedule.duration + timedelta(microseconds=1)  # starts_at <= now - duration
    series_start = local_to_utc(datetime.combine(schedule.dtstart, schedule.start_local), schedule.zone)
    earliest = min([series_start, *(occ.starts_at for occ in _moved_occurrences(schedule))]) - _MARGIN
    for lookback in (*_LOOKBACKS, None):
        window_start = earliest if lookback is None else max(bound - lookback, earliest)
        found = occurrences_between(schedule, window_start, bound)
        if found:
            return found[-1]
        if window_start == earliest:
            break
    return None


def _minutes_until(later: datetime, now: datetime) -> int:
    # Rounded up: thirty seconds before the start is still "starts in 1 minute".
    return max(0, math.ceil((later - now).total_seconds() / 60))


def state_at(schedule: Schedule, now: datetime) -> MeetingState:
    """Return the meeting's phase at `now`.

    Doors open at ``doors_open_at``, the meeting is live from ``starts_at``, ending from
    ``ending_notice_at`` and closed from ``ends_at`` (each instant belongs to the later phase).
    Between meetings the room is CLOSED (read-only) once any meeting has ended, SCHEDULED before
    the first one ever; ``occurrence`` is then the last meeting that ended, if any.
    """
    _require_aware(now, "now")
    upcoming = _starting_after(schedule, now - schedule.duration)
    current = next((occ for occ in upcoming if occ.ends_at > now), None)
    if current is not None and current.doors_open_at <= now:
        following = next(upcoming, None)
        if now < current.starts_at:
            return MeetingState(Phase.DOORS_OPEN, current, following, _minutes_until(current.starts_at, now))
        phase = Phase.LIVE if now < current.ending_notice_at else Phase.ENDING
        return MeetingState(phase, current, following, None)
    last = _last_ended(schedule, now)
    minutes = None if current is None else _minutes_until(current.starts_at, now)
    return MeetingState(Phase.SCHEDULED if last is None else Phase.CLOSED, last, current, minutes)


def _date_words(day: date) -> str:
    return f"{_DAY_ABBR[day.weekday()]} {day.day} {_MONTH_ABBR[day.month - 1]} {day.year}"


def _abbreviation(local: datetime) -> str:
    """Return the zone's short name at that instant, e.g. IST or EDT, or UTC+05:45 when it has none."""
    name = local.tzname() or ""
    # Many zones have no letters in the tz database and report "+0545" or "-03"; spell those out.
    if name and name[0] not in "+-":
        return name
    offset = local.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def format_for_viewer(dt: datetime, viewer_tz: str) -> str:
    """Return an instant in the viewer's zone with the zone named, e.g. "Mon 20 Mar, 19:00 IST".

    English day and month names are built in rather than read from the process locale.
    """
    _require_aware(dt, "The time to show")
    local = dt.astimezone(get_zone(viewer_tz))
    return (
        f"{_DAY_ABBR[local.weekday()]} {local.day} {_MONTH_ABBR[local.month - 1]}, {local:%H:%M} {_abbreviation(local)}"
    )


def zone_label(tz: str, at: datetime) -> str:
    """Return the meeting's zone named for people, e.g. "Kolkata time (IST, UTC+05:30)".

    `at` matters: New York is EST in January and EDT in July.
    """
    _require_aware(at, "at")
    local = at.astimezone(get_zone(tz))
    place = tz.rsplit("/", 1)[-1].replace("_", " ")
    offset = local.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    numeric = f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    abbreviation = _abbreviation(local)
    named = numeric if abbreviation == numeric else f"{abbreviation}, {numeric}"
    return f"{place} time ({named})"
