"""Recurrence, time zones and the meeting lifecycle (rooms/schedule.py); pure, no Django."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType

import pytest

from rooms.schedule import (
    Occurrence,
    Phase,
    Schedule,
    ScheduleError,
    format_for_viewer,
    local_to_utc,
    monthly_rrule,
    next_occurrence,
    occurrences_between,
    state_at,
    validate_rrule,
    weekly_days,
    weekly_rrule,
    zone_label,
)

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
HOUR = timedelta(hours=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def weekly(days: list[int], tz: str = "Asia/Kolkata", at: time = time(19), **kwargs: object) -> Schedule:
    options: dict[str, object] = {"duration": HOUR, "dtstart": date(2025, 1, 1), **kwargs}
    return Schedule(rrule=weekly_rrule(days), start_local=at, tz=tz, **options)  # type: ignore[arg-type]


def the_one_on(schedule: Schedule, day: date) -> Occurrence:
    found = [
        occ
        for occ in occurrences_between(schedule, utc(day.year, day.month, day.day) - 2 * HOUR * 24, utc(2100, 1, 1))
        if occ.local_date == day
    ]
    assert len(found) == 1, found
    return found[0]


# --- Daylight saving: the wall clock in the meeting's zone wins ------------------------------------


@pytest.mark.parametrize(
    ("tz", "weekday", "before", "before_ist", "after", "after_ist"),
    [
        # US clocks go forward on Sun 9 Mar 2025: 19:00 EST is 05:30 IST, 19:00 EDT is 04:30 IST.
        (
            "America/New_York",
            MON,
            date(2025, 3, 3),
            "Tue 4 Mar, 05:30 IST",
            date(2025, 3, 10),
            "Tue 11 Mar, 04:30 IST",
        ),
        # ...and back on Sun 2 Nov 2025.
        (
            "America/New_York",
            MON,
            date(2025, 10, 27),
            "Tue 28 Oct, 04:30 IST",
            date(2025, 11, 3),
            "Tue 4 Nov, 05:30 IST",
        ),
        # UK clocks go forward on Sun 30 Mar 2025 and back on Sun 26 Oct 2025.
        (
            "Europe/London",
            THU,
            date(2025, 3, 27),
            "Fri 28 Mar, 00:30 IST",
            date(2025, 4, 3),
            "Thu 3 Apr, 23:30 IST",
        ),
        (
            "Europe/London",
            THU,
            date(2025, 10, 23),
            "Thu 23 Oct, 23:30 IST",
            date(2025, 10, 30),
            "Fri 31 Oct, 00:30 IST",
        ),
        # Sydney is the other way round: daylight time ends Sun 6 Apr 2025 and starts Sun 5 Oct 2025.
        (
            "Australia/Sydney",
            WED,
            date(2025, 4, 2),
            "Wed 2 Apr, 13:30 IST",
            date(2025, 4, 9),
            "Wed 9 Apr, 14:30 IST",
        ),
        (
            "Australia/Sydney",
            WED,
            date(2025, 10, 1),
            "Wed 1 Oct, 14:30 IST",
            date(2025, 10, 8),
            "Wed 8 Oct, 13:30 IST",
        ),
        # Kolkata has no daylight saving: nothing moves while the rest of the world changes clocks.
        (
            "Asia/Kolkata",
            MON,
            date(2025, 3, 3),
            "Mon 3 Mar, 19:00 IST",
            date(2025, 3, 10),
            "Mon 10 Mar, 19:00 IST",
        ),
    ],
)
def test_meeting_keeps_its_local_wall_time_and_moves_in_kolkata_across_a_clock_change(
    tz: str, weekday: int, before: date, before_ist: str, after: date, after_ist: str
) -> None:
    schedule = weekly([weekday], tz=tz)

    assert format_for_viewer(the_one_on(schedule, before).starts_at, "Asia/Kolkata") == before_ist
    assert format_for_viewer(the_one_on(schedule, after).starts_at, "Asia/Kolkata") == after_ist
    for day in (before, after):
        assert format_for_viewer(the_one_on(schedule, day).starts_at, tz).split(", ")[1].startswith("19:00 ")


def test_new_york_meeting_moves_an_hour_in_kolkata_after_us_dst_ends() -> None:
    schedule = weekly([MON], tz="America/New_York")

    before = the_one_on(schedule, date(2025, 10, 27)).starts_at
    after = the_one_on(schedule, date(2025, 11, 3)).starts_at

    assert after - before == timedelta(days=7, hours=1)


def test_kolkata_meeting_is_exactly_a_week_apart_all_year() -> None:
    schedule = weekly([SUN])
    starts = [occ.starts_at for occ in occurrences_between(schedule, utc(2025, 1, 1), utc(2026, 1, 1))]

    assert len(starts) == 52
    assert {later - earlier for earlier, later in itertools.pairwise(starts)} == {timedelta(days=7)}
    assert {(s.hour, s.minute) for s in starts} == {(13, 30)}


@pytest.mark.parametrize(
    ("tz", "wall", "expected_utc", "why"),
    [
        (
            "America/New_York",
            datetime(2025, 3, 9, 2, 30),
            utc(2025, 3, 9, 7, 30),
            "gap: 02:30 becomes 03:30 EDT",
        ),
        (
            "Europe/London",
            datetime(2025, 3, 30, 1, 30),
            utc(2025, 3, 30, 1, 30),
            "gap: 01:30 becomes 02:30 BST",
        ),
        (
            "America/New_York",
            datetime(2025, 11, 2, 1, 30),
            utc(2025, 11, 2, 5, 30),
            "fold: the first 01:30 (EDT)",
        ),
        (
            "Europe/London",
            datetime(2025, 10, 26, 1, 30),
            utc(2025, 10, 26, 0, 30),
            "fold: the first 01:30 (BST)",
        ),
        (
            "Australia/Sydney",
            datetime(2025, 4, 6, 2, 30),
            utc(2025, 4, 5, 15, 30),
            "fold: the first 02:30 (AEDT)",
        ),
        (
            "Australia/Sydney",
            datetime(2025, 10, 5, 2, 30),
            utc(2025, 10, 4, 16, 30),
            "gap: 02:30 becomes 03:30",
        ),
    ],
)
def test_nonexistent_times_skip_forward_and_ambiguous_times_take_the_first(
    tz: str, wall: datetime, expected_utc: datetime, why: str
) -> None:
    assert local_to_utc(wall, tz) == expected_utc, why


def test_daily_meeting_in_the_spring_gap_starts_an_hour_later_by_the_wall_clock_that_day_only() -> None:
    schedule = Schedule(
        rrule="FREQ=DAILY",
        start_local=time(2, 30),
        duration=HOUR,
        tz="America/New_York",
        dtstart=date(2025, 3, 8),
    )
    shown = [
        format_for_viewer(occ.starts_at, "America/New_York")
        for occ in occurrences_between(schedule, utc(2025, 3, 8), utc(2025, 3, 11))
    ]

    assert shown == ["Sat 8 Mar, 02:30 EST", "Sun 9 Mar, 03:30 EDT", "Mon 10 Mar, 02:30 EDT"]


def test_duration_is_elapsed_time_across_the_autumn_fold() -> None:
    schedule = Schedule(
        rrule="FREQ=DAILY",
        start_local=time(1),
        duration=2 * HOUR,
        tz="America/New_York",
        dtstart=date(2025, 11, 2),
    )
    occ = occurrences_between(schedule, utc(2025, 11, 2), utc(2025, 11, 3))[0]

    assert occ.ends_at - occ.starts_at == 2 * HOUR
    assert format_for_viewer(occ.ends_at, "America/New_York") == "Sun 2 Nov, 02:00 EST"


def test_every_returned_instant_is_aware_utc() -> None:
    schedule = weekly([MON, THU], tz="Europe/London")
    for occ in occurrences_between(schedule, utc(2025, 1, 1), utc(2025, 12, 31)):
        for instant in (occ.starts_at, occ.ends_at, occ.doors_open_at, occ.ending_notice_at):
            assert instant.tzinfo is UTC


# --- The lifecycle at exact instants -------------------------------------------------------------

# Mondays 19:00-20:00 IST = 13:30-14:30 UTC; doors open 10 minutes before, ending notice 5 before the end.
MONDAYS = weekly([MON])
FIRST_MONDAY = utc(2025, 1, 6, 13, 30)
A_MONDAY = utc(2025, 3, 10, 13, 30)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("now", "phase", "minutes_to_start"),
    [
        (A_MONDAY - timedelta(minutes=10) - SECOND, Phase.CLOSED, 11),
        (A_MONDAY - timedelta(minutes=10), Phase.DOORS_OPEN, 10),
        (A_MONDAY - timedelta(seconds=30), Phase.DOORS_OPEN, 1),
        (A_MONDAY, Phase.LIVE, None),
        (A_MONDAY + timedelta(minutes=54, seconds=59), Phase.LIVE, None),
        (A_MONDAY + timedelta(minutes=55), Phase.ENDING, None),
        (A_MONDAY + HOUR - SECOND, Phase.ENDING, None),
        (A_MONDAY + HOUR, Phase.CLOSED, 7 * 24 * 60 - 60),
    ],
)
def test_phase_changes_at_exact_instants(now: datetime, phase: Phase, minutes_to_start: int | None) -> None:
    state = state_at(MONDAYS, now)

    assert state.phase is phase
    assert state.minutes_to_start == minutes_to_start


def test_live_meeting_reports_itself_and_the_following_one() -> None:
    state = state_at(MONDAYS, A_MONDAY + timedelta(minutes=20))

    assert state.occurrence is not None and state.occurrence.starts_at == A_MONDAY
    assert state.next_occurrence is not None and state.next_occurrence.starts_at == A_MONDAY + timedelta(days=7)


def test_room_is_closed_between_meetings_and_remembers_the_last_one() -> None:
    state = state_at(MONDAYS, A_MONDAY + timedelta(days=2))

    assert state.phase is Phase.CLOSED
    assert state.occurrence is not None and state.occurrence.starts_at == A_MONDAY
    assert state.next_occurrence is not None and state.next_occurrence.starts_at == A_MONDAY + timedelta(days=7)


def test_room_is_scheduled_before_the_first_meeting_ever() -> None:
    state = state_at(MONDAYS, FIRST_MONDAY - timedelta(minutes=11))

    assert state.phase is Phase.SCHEDULED
    assert state.occurrence is None
    assert state.next_occurrence is not None and state.next_occurrence.starts_at == FIRST_MONDAY
    assert state.minutes_to_start == 11


def test_room_stays_closed_with_nothing_next_after_the_series_ends() -> None:
    schedule = weekly([MON], until=date(2025, 3, 10))

    state = state_at(schedule, A_MONDAY + timedelta(days=30))

    assert state.phase is Phase.CLOSED
    assert state.occurrence is not None and state.occurrence.local_date == date(2025, 3, 10)
    assert state.next_occurrence is None and state.minutes_to_start is None
    assert next_occurrence(schedule, A_MONDAY + timedelta(days=30)) is None


def test_closed_room_finds_its_last_meeting_even_months_back() -> None:
    schedule = Schedule(rrule=monthly_rrule(SUN, 1), start_local=time(11), duration=HOUR, dtstart=date(2024, 1, 1))

    state = state_at(schedule, utc(2025, 3, 1))

    assert state.phase is Phase.CLOSED
    assert state.occurrence is not None and state.occurrence.local_date == date(2025, 2, 2)


@pytest.mark.parametrize(
    ("now", "expected_start"),
    [
        (A_MONDAY - timedelta(hours=3), A_MONDAY),  # before the doors open
        (A_MONDAY - timedelta(minutes=5), A_MONDAY),  # doors open
        (A_MONDAY + timedelta(minutes=59), A_MONDAY),  # still under way: the current one
        (A_MONDAY + HOUR, A_MONDAY + timedelta(days=7)),  # just ended
    ],
)
def test_next_occurrence_is_the_current_one_until_it_ends(now: datetime, expected_start: datetime) -> None:
    occ = next_occurrence(MONDAYS, now)

    assert occ is not None and occ.starts_at == expected_start


def test_naive_now_is_refused() -> None:
    with pytest.raises(ScheduleError, match="time zone"):
        state_at(MONDAYS, datetime(2025, 3, 10, 19))


# --- Cancelled and moved dates -------------------------------------------------------------------


def test_cancelled_date_is_skipped_and_the_room_stays_closed_that_evening() -> None:
    schedule = weekly([MON], cancelled=frozenset({date(2025, 3, 10)}))

    days = [occ.local_date for occ in occurrences_between(schedule, utc(2025, 3, 1), utc(2025, 3, 25))]
    state = state_at(schedule, A_MONDAY)

    assert days == [date(2025, 3, 3), date(2025, 3, 17), date(2025, 3, 24)]
    assert state.phase is Phase.CLOSED
    assert state.next_occurrence is not None and state.next_occurrence.local_date == date(2025, 3, 17)


def test_moved_meeting_happens_at_its_new_time_and_keeps_its_series_date() -> None:
    # Holi (Fri 14 Mar 2025): the Friday meeting moves to Saturday morning.
    new_start = datetime(2025, 3, 15, 10, 0, tzinfo=MONDAYS.zone)
    schedule = weekly([FRI], moved={date(2025, 3, 14): new_start})

    occurrences = occurrences_between(schedule, utc(2025, 3, 10), utc(2025, 3, 22))
    moved = occurrences[0]

    assert [occ.local_date for occ in occurrences] == [date(2025, 3, 14), date(2025, 3, 21)]
    assert moved.starts_at == utc(2025, 3, 15, 4, 30)
    assert state_at(schedule, utc(2025, 3, 14, 13, 30)).phase is Phase.CLOSED
    assert state_at(schedule, utc(2025, 3, 15, 4, 20)).phase is Phase.DOORS_OPEN
    assert state_at(schedule, utc(2025, 3, 15, 4, 30)).phase is Phase.LIVE


def test_holiday_schedule_cancels_and_moves_several_dates_at_once() -> None:
    ist = MONDAYS.zone
    schedule = weekly(
        [MON, WED, FRI],
        cancelled=frozenset({date(2025, 10, 1), date(2025, 10, 3)}),  # Durga Puja: Navami, and the day after Dashami
        moved={date(2025, 10, 20): datetime(2025, 10, 20, 11, 0, tzinfo=ist)},  # Kali Puja / Diwali evening
    )

    occurrences = occurrences_between(schedule, utc(2025, 9, 29), utc(2025, 10, 25))
    by_day = {occ.local_date: occ for occ in occurrences}

    assert date(2025, 10, 1) not in by_day and date(2025, 10, 3) not in by_day
    assert date(2025, 9, 29) in by_day
    assert format_for_viewer(by_day[date(2025, 10, 20)].starts_at, "Asia/Kolkata") == "Mon 20 Oct, 11:00 IST"
    assert occurrences == sorted(occurrences, key=lambda occ: occ.starts_at)


def test_moved_meeting_outside_the_window_of_its_series_date_is_found_by_its_new_time() -> None:
    schedule = weekly([MON], moved={date(2025, 3, 10): datetime(2025, 3, 13, 13, 30, tzinfo=UTC)})

    assert [occ.local_date for occ in occurrences_between(schedule, utc(2025, 3, 12), utc(2025, 3, 14))] == [
        date(2025, 3, 10)
    ]
    assert occurrences_between(schedule, utc(2025, 3, 10), utc(2025, 3, 11)) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"moved": {date(2025, 3, 11): utc(2025, 3, 11, 13)}}, "not a date of this series"),
        (
            {"moved": {date(2025, 3, 10): utc(2025, 3, 11, 13)}, "cancelled": frozenset({date(2025, 3, 10)})},
            "both cancelled and moved",
        ),
        ({"moved": {date(2025, 3, 10): datetime(2025, 3, 11, 19)}}, "must carry a time zone"),
        ({"tz": "Asia/Calcutta_Old"}, "not a time zone name"),
        ({"tz": "IST"}, "not a time zone name"),
        ({"duration": timedelta(0)}, "more than zero minutes"),
        ({"ending_notice": HOUR}, "ending notice"),
        ({"until": date(2024, 12, 31)}, "cannot end before"),
    ],
)
def test_unusable_schedules_are_refused_with_a_reason(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        weekly([MON], **kwargs)


def test_schedule_copies_its_moved_dates_so_later_edits_cannot_change_it() -> None:
    moved = {date(2025, 3, 10): utc(2025, 3, 11, 13)}
    schedule = weekly([MON], moved=moved)
    moved[date(2025, 3, 17)] = utc(2025, 3, 18, 13)

    assert isinstance(schedule.moved, MappingProxyType)
    assert list(schedule.moved) == [date(2025, 3, 10)]


# --- Repeat rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "dtstart", "expected"),
    [
        (  # first Sunday of the month
            monthly_rrule(SUN, 1),
            date(2025, 1, 1),
            [date(2025, 1, 5), date(2025, 2, 2), date(2025, 3, 2), date(2025, 4, 6)],
        ),
        (  # last Friday of the month
            monthly_rrule(FRI, -1),
            date(2025, 1, 1),
            [date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 28), date(2025, 4, 25)],
        ),
        (  # every other Tuesday, counted from the first date
            weekly_rrule([TUE], interval=2),
            date(2025, 1, 7),
            [date(2025, 1, 7), date(2025, 1, 21), date(2025, 2, 4), date(2025, 2, 18)],
        ),
        (  # weekdays, four meetings only
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;COUNT=4",
            date(2025, 1, 1),
            [date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 3), date(2025, 1, 6)],
        ),
        (  # a bare UNTIL date includes that date's evening meeting
            "FREQ=DAILY;UNTIL=20250103",
            date(2025, 1, 1),
            [date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 3)],
        ),
    ],
)
def test_repeat_rules_produce_the_expected_dates(rule: str, dtstart: date, expected: list[date]) -> None:
    schedule = Schedule(rrule=rule, start_local=time(18), duration=HOUR, dtstart=dtstart)

    found = occurrences_between(schedule, utc(2025, 1, 1), utc(2025, 5, 1))

    assert [occ.local_date for occ in found][: len(expected)] == expected


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("", "empty"),
        ("WEEKLY", "NAME=VALUE"),
        ("BYDAY=MO", "needs FREQ"),
        ("FREQ=HOURLY", "daily, weekly, monthly or yearly"),
        ("FREQ=FORTNIGHTLY", "daily, weekly, monthly or yearly"),
        ("FREQ=WEEKLY;BYDAY=XX", "'XX' is not a weekday"),
        ("FREQ=WEEKLY;BYDAY=1SU", "only makes sense with FREQ=MONTHLY"),
        ("FREQ=WEEKLY;COLOUR=BLUE", "'COLOUR' is not part of a repeat rule"),
        ("FREQ=WEEKLY;FREQ=DAILY", "appears twice"),
        ("FREQ=WEEKLY;INTERVAL=0", "at least 1"),
        ("FREQ=DAILY;BYHOUR=19", "start time is set separately"),
        ("FREQ=DAILY;UNTIL=20251231T000000Z", "without a Z"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20251231", "not both"),
        ("FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30", "never produces a date"),
        ("DTSTART:20250101T190000\nRRULE:FREQ=DAILY", "single RRULE line"),
    ],
)
def test_invalid_repeat_rules_are_rejected_with_a_readable_reason(rule: str, reason: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        validate_rrule(rule)

    assert reason in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("rrule:freq=weekly;byday=mo,we", "FREQ=WEEKLY;BYDAY=MO,WE"),
        ("FREQ=MONTHLY;BYDAY=1SU;", "FREQ=MONTHLY;BYDAY=1SU"),
        ("FREQ=DAILY;UNTIL=20251231", "FREQ=DAILY;UNTIL=20251231T235959"),
    ],
)
def test_valid_repeat_rules_are_normalised(text: str, normalised: str) -> None:
    assert validate_rrule(text) == normalised


@pytest.mark.parametrize(
    ("days", "interval", "rule"),
    [
        ([MON, WED, FRI], 1, "FREQ=WEEKLY;BYDAY=MO,WE,FR"),
        ([SUN], 1, "FREQ=WEEKLY;BYDAY=SU"),
        ([FRI, MON, FRI], 1, "FREQ=WEEKLY;BYDAY=MO,FR"),
        ([TUE], 2, "FREQ=WEEKLY;BYDAY=TU;INTERVAL=2"),
    ],
)
def test_weekly_rrule_maps_python_weekdays_to_byday(days: list[int], interval: int, rule: str) -> None:
    assert weekly_rrule(days, interval=interval) == rule


@pytest.mark.parametrize(("days", "interval"), [([], 1), ([7], 1), ([-1], 1), ([MON], 0)])
def test_weekly_rrule_refuses_impossible_days(days: list[int], interval: int) -> None:
    with pytest.raises(ScheduleError):
        weekly_rrule(days, interval=interval)


@pytest.mark.parametrize(
    ("rule", "days"),
    [
        ("FREQ=WEEKLY;BYDAY=MO,WE,FR", (MON, WED, FRI)),
        ("FREQ=WEEKLY;BYDAY=SU;WKST=SU", (SUN,)),
        ("FREQ=WEEKLY;BYDAY=TU;INTERVAL=2", None),
        ("FREQ=MONTHLY;BYDAY=1SU", None),
        ("FREQ=DAILY", None),
        ("FREQ=WEEKLY;BYDAY=MO;COUNT=5", None),
    ],
)
def test_weekly_days_says_which_rules_fit_a_weekly_meeting_list(rule: str, days: tuple[int, ...] | None) -> None:
    assert weekly_days(rule) == days


# --- Showing times to people ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "viewer", "shown"),
    [
        (utc(2025, 3, 20, 13, 30), "Asia/Kolkata", "Thu 20 Mar, 19:00 IST"),
        (utc(2025, 3, 20, 13, 30), "America/New_York", "Thu 20 Mar, 09:30 EDT"),
        (utc(2025, 1, 20, 13, 30), "America/New_York", "Mon 20 Jan, 08:30 EST"),
        (utc(2025, 7, 1, 18, 0), "Europe/London", "Tue 1 Jul, 19:00 BST"),
        (utc(2025, 1, 1, 0, 0), "Australia/Sydney", "Wed 1 Jan, 11:00 AEDT"),
        (utc(2025, 3, 20, 13, 30), "Asia/Kathmandu", "Thu 20 Mar, 19:15 UTC+05:45"),
        (utc(2025, 3, 20, 13, 30), "America/Sao_Paulo", "Thu 20 Mar, 10:30 UTC-03:00"),
        (utc(2025, 3, 20, 13, 30), "UTC", "Thu 20 Mar, 13:30 UTC"),
    ],
)
def test_format_for_viewer_shows_the_viewers_time_and_names_the_zone(
    instant: datetime, viewer: str, shown: str
) -> None:
    assert format_for_viewer(instant, viewer) == shown


@pytest.mark.parametrize(
    ("tz", "at", "label"),
    [
        ("Asia/Kolkata", utc(2025, 7, 1), "Kolkata time (IST, UTC+05:30)"),
        ("America/New_York", utc(2025, 1, 15), "New York time (EST, UTC-05:00)"),
        ("America/New_York", utc(2025, 7, 15), "New York time (EDT, UTC-04:00)"),
        ("Asia/Dhaka", utc(2025, 7, 1), "Dhaka time (UTC+06:00)"),
    ],
)
def test_zone_label_names_the_meetings_zone_for_people(tz: str, at: datetime, label: str) -> None:
    assert zone_label(tz, at) == label


def test_format_for_viewer_refuses_a_naive_time() -> None:
    with pytest.raises(ScheduleError):
        format_for_viewer(datetime(2025, 3, 20, 19), "Asia/Kolkata")
