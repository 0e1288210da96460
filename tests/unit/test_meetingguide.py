"""The Meeting Guide feed (rooms/meetingguide.py): type codes, export, import; pure, no Django."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rooms.meetingguide import (
    PROGRAMME_TYPES,
    SPEC_TYPES,
    FeedMeeting,
    Programme,
    infer_programme,
    parse_feed,
    schema_errors,
    to_feed_row,
    type_name,
)

DATA = Path(__file__).resolve().parent.parent / "data"
KENDRA_FEED = json.loads((DATA / "kendra-feed.json").read_text(encoding="utf-8"))
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def meeting(**overrides: object) -> FeedMeeting:
    fields: dict[str, object] = {
        "name": "Salt Lake Serenity",
        "slug": "salt-lake-serenity",
        "programme": Programme.AA,
        "days": (MON,),
        "start_local": time(19),
        "duration": timedelta(hours=1),
        "tz": "Asia/Kolkata",
        "types": ("O", "D"),
        **overrides,
    }
    return FeedMeeting(**fields)  # type: ignore[arg-type]


# --- Type codes ----------------------------------------------------------------------------------


def test_every_schema_type_code_has_an_english_name_and_nothing_else_does() -> None:
    schema = json.loads((DATA / "meeting-guide" / "meeting-type.schema.json").read_text(encoding="utf-8"))
    schema_codes = {code for branch in schema["items"]["anyOf"] for code in branch["enum"]}

    assert set(SPEC_TYPES) == schema_codes


@pytest.mark.parametrize("programme", list(Programme))
def test_every_programme_reads_only_codes_the_schema_allows(programme: Programme) -> None:
    assert set(PROGRAMME_TYPES[programme]) <= set(SPEC_TYPES)
    assert {"O", "C", "EN", "HI"} <= set(PROGRAMME_TYPES[programme])


@pytest.mark.parametrize(
    ("code", "programme", "meaning"),
    [
        ("POA", Programme.AA, "Proof of Attendance"),
        ("POA", Programme.AL_ANON, "Parents of Alcoholics"),
        ("POA", Programme.AFTERCARE, "Proof of Attendance"),
        ("Y", Programme.AA, "Young People"),
        ("Y", Programme.AL_ANON, "Alateen"),
        ("A", Programme.AA, "Secular"),
        ("A", Programme.AL_ANON, "Atheist / Agnostic"),
        ("O", Programme.AA, "Open"),
        ("O", Programme.AL_ANON, "Families, Friends and Observers Welcome"),
        ("C", Programme.AA, "Closed"),
        ("C", Programme.AL_ANON, "Families and Friends Only"),
        ("C", Programme.NAR_ANON, "Families and Friends Only"),
        ("AL-AN", Programme.AA, "Concurrent with Al-Anon"),
        ("AL", Programme.AL_ANON, "Concurrent with Alateen Meeting"),
        ("H", Programme.AA, "Birthday"),
        ("P", Programme.AA, "Professionals"),
        ("P", Programme.NA, "Professionals"),
        ("FF", Programme.AA, "Fragrance Free"),
        ("FF", Programme.AL_ANON, "Fragrance Free"),
        ("BE", Programme.NA, "Beginner/Newcomer"),
        ("HI", Programme.SMART, "Hindi"),
    ],
)
def test_type_codes_mean_what_their_programme_says(code: str, programme: Programme, meaning: str) -> None:
    assert type_name(code, programme) == meaning


@pytest.mark.parametrize(
    ("code", "programme"),
    [
        ("B", Programme.AL_ANON),  # Big Book is AA literature
        ("AL-AN", Programme.AL_ANON),  # an Al-Anon meeting is not "concurrent with Al-Anon"
        ("Y", Programme.NAR_ANON),  # Narateen or young people? not published, so not guessed
        ("POA", Programme.NAR_ANON),  # parents or proof of attendance? same
        ("P", Programme.THERAPIST_LED),  # would read as "run by professionals"
        ("ST", Programme.SMART),  # SMART Recovery has no steps
        ("H", Programme.NA),
        ("12x12", Programme.NA),
    ],
)
def test_codes_that_mean_nothing_in_a_programme_are_not_in_its_table(code: str, programme: Programme) -> None:
    with pytest.raises(KeyError):
        type_name(code, programme)


@pytest.mark.parametrize(
    ("name", "types", "default", "expected"),
    [
        ("Ballygunge Al-Anon Family Group", [], Programme.AA, Programme.AL_ANON),
        ("Kasba Alateen", ["Y"], None, Programme.AL_ANON),
        ("Dum Dum Nar-Anon", [], None, Programme.NAR_ANON),
        ("New Town SMART Recovery", [], None, Programme.SMART),
        ("Behala Hope NA", [], None, Programme.NA),
        ("Jadavpur Bangla Meeting AA", [], None, Programme.AA),
        ("Hope Group", ["BT", "O"], None, Programme.NA),
        ("Hope Group", ["AC"], None, Programme.AL_ANON),
        ("Hope Group", ["B", "O"], None, Programme.AA),
        ("Hope Group", ["B", "O"], Programme.NA, Programme.NA),  # the caller's word beats a guess from codes
        ("Banaras Ghat Group", ["O"], None, None),  # "na" inside a word is not NA
        ("Hope Group", ["O", "D"], None, None),
    ],
)
def test_programme_is_inferred_from_name_then_default_then_codes(
    name: str, types: list[str], default: Programme | None, expected: Programme | None
) -> None:
    assert infer_programme(name, types, default) == expected


# --- Export --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "day"),
    [
        ((MON,), 1),
        ((SUN,), 0),
        ((SAT,), 6),
        ((MON, WED, FRI), [1, 3, 5]),
        ((SUN, SAT), [0, 6]),
        ((MON, TUE, WED, THU, FRI, SAT, SUN), [0, 1, 2, 3, 4, 5, 6]),
    ],
)
def test_python_weekdays_become_feed_days_counted_from_sunday(days: tuple[int, ...], day: object) -> None:
    row = to_feed_row(meeting(days=days))

    assert row["day"] == day
    assert schema_errors(row) == []


@pytest.mark.parametrize(
    "item",
    [
        meeting(),
        meeting(
            days=(MON, WED, FRI),
            start_local=time(7, 5),
            duration=timedelta(minutes=90),
            tz="America/New_York",
            types=("C", "B", "X"),
            notes="Ring the bell.\nSecond floor.",
            updated=datetime(2025, 3, 1, 9, 0, tzinfo=ZoneInfo("Asia/Kolkata")),
            conference_url="https://zoom.us/j/81234567890",
            conference_url_notes="Passcode: serenity",
            language="hi",
            region="Salt Lake",
            regions=("Kolkata", "Salt Lake"),
            location="Kendra community room",
        ),
        meeting(programme=Programme.AL_ANON, types=("Y", "POA", "C")),
        meeting(programme=Programme.SMART, types=("O", "A", "LGBTQIAA+", "D-HOH")),
        meeting(start_local=time(23, 30), duration=timedelta(hours=1)),
    ],
)
def test_exported_rows_validate_against_the_schema(item: FeedMeeting) -> None:
    row = to_feed_row(item)

    assert schema_errors(row) == []
    assert row["timezone"] == item.tz


def test_exported_row_carries_times_end_time_and_utc_updated_in_spec_format() -> None:
    row = to_feed_row(
        meeting(
            start_local=time(7, 5),
            duration=timedelta(minutes=90),
            updated=datetime(2025, 3, 1, 9, 0, tzinfo=ZoneInfo("Asia/Kolkata")),
            language="hi",
        )
    )

    assert (row["time"], row["end_time"]) == ("07:05", "08:35")
    assert row["updated"] == "2025-03-01 03:30:00"
    assert row["types"] == ["O", "D", "HI"]


def test_late_meeting_exports_an_end_time_after_midnight() -> None:
    assert to_feed_row(meeting(start_local=time(23, 30)))["end_time"] == "00:30"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"programme": Programme.NAR_ANON, "types": ("Y",)}, "mean nothing in Nar-Anon"),
        ({"programme": Programme.SMART, "types": ("ST",)}, "mean nothing in SMART Recovery"),
        ({"updated": datetime(2025, 3, 1, 9, 0)}, "aware"),
        ({"days": ()}, "weekdays"),
        ({"days": (7,)}, "weekdays"),
        ({"duration": timedelta(hours=24)}, "duration"),
    ],
)
def test_export_refuses_a_meeting_the_feed_cannot_say_truthfully(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        to_feed_row(meeting(**overrides))


# --- Import --------------------------------------------------------------------------------------

GOOD_SLUGS = [
    "salt-lake-serenity",
    "park-street-big-book",
    "behala-hope-na",
    "ballygunge-al-anon",
    "kasba-alateen",
    "dum-dum-nar-anon",
    "new-town-smart",
    "kolkata-online-morning",
    "midnight-sangha",
    "jadavpur-bangla",
    "howrah-womens-circle",
    "colaba-step-study",
    "thamel-serenity",
    "brooklyn-heights-big-book",
    "camden-young-people",
    "bondi-jft-na",
]


def test_good_rows_are_imported_even_when_bad_rows_share_the_feed() -> None:
    result = parse_feed(KENDRA_FEED)

    assert [m.slug for m in result.meetings] == GOOD_SLUGS
    assert len(result.meetings) + len(result.rejected) == len(KENDRA_FEED)


@pytest.mark.parametrize(
    ("index", "label", "reason"),
    [
        (16, "Gariahat Serenity", "has no slug"),
        (17, "salt-lake-serenity", "already used by row 0"),
        (18, "tollygunge-tuesday", "'IST' is not a tz database name"),
        (19, "sealdah-evening", "time: '7pm' does not match"),
        (20, "shyambazar-late", "end_time 18:00 is before the start time 19:00"),
        (21, "baranagar-week", "day 7 is not 0 (Sunday) to 6 (Saturday)"),
        (22, "lake-town-monday", "day: 'Monday' is not of type"),
        (23, "chowringhee-fellowship", "XYZ mean nothing"),
        (24, "bhowanipore-al-anon", "B mean nothing Saathi knows in Al-Anon"),
        (25, "rajarhat-online", "is not a web address"),
        (26, "garia-by-appointment", "no day and time"),
        (27, "barasat-friday", "not a real date"),
        (28, "nameless-meeting", "'name' is a required property"),
        (29, "row 29", "not a JSON object"),
        (30, "ultadanga step study", "not URL-safe"),
    ],
)
def test_bad_rows_are_rejected_with_a_reason(index: int, label: str, reason: str) -> None:
    rejected = {row.index: row for row in parse_feed(KENDRA_FEED).rejected}

    assert rejected[index].slug_or_name == label
    assert reason in rejected[index].reason


def test_feed_that_is_not_a_list_is_rejected_whole() -> None:
    result = parse_feed({"meetings": []})

    assert result.meetings == [] and "not a JSON array" in result.rejected[0].reason


def by_slug(slug: str, **kwargs: object) -> FeedMeeting:
    return next(m for m in parse_feed(KENDRA_FEED, **kwargs).meetings if m.slug == slug)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("slug", "days", "start", "duration", "tz"),
    [
        ("salt-lake-serenity", (MON, WED, FRI), time(19), timedelta(hours=1), "Asia/Kolkata"),
        ("park-street-big-book", (SUN,), time(10), timedelta(minutes=90), "Asia/Kolkata"),
        ("ballygunge-al-anon", (SAT,), time(17), timedelta(hours=1), "Asia/Kolkata"),
        ("kolkata-online-morning", (MON, TUE, WED, THU, FRI, SAT, SUN), time(7), timedelta(hours=1), "Asia/Kolkata"),
        ("midnight-sangha", (SAT,), time(23, 30), timedelta(hours=1), "Asia/Kolkata"),
        ("jadavpur-bangla", (FRI,), time(18), timedelta(hours=1), "Asia/Kolkata"),  # no end_time: one hour
        ("brooklyn-heights-big-book", (MON,), time(19), timedelta(hours=1), "America/New_York"),
        ("bondi-jft-na", (MON, THU), time(19), timedelta(minutes=90), "Australia/Sydney"),
    ],
)
def test_feed_days_times_and_zones_are_read_into_python_terms(
    slug: str, days: tuple[int, ...], start: time, duration: timedelta, tz: str
) -> None:
    item = by_slug(slug)

    assert (item.days, item.start_local, item.duration, item.tz) == (days, start, duration, tz)


@pytest.mark.parametrize(
    ("slug", "programme", "types"),
    [
        ("salt-lake-serenity", Programme.AA, ("O", "D", "EN", "B")),
        ("behala-hope-na", Programme.NA, ("O", "BE", "LIT", "HI")),  # NA's BEG and JFT
        ("bondi-jft-na", Programme.NA, ("O", "LIT", "SP", "G", "L")),  # NA's JFT, SPK, GL
        ("ballygunge-al-anon", Programme.AL_ANON, ("C", "POA", "EN")),
        ("kasba-alateen", Programme.AL_ANON, ("Y", "C")),
        ("new-town-smart", Programme.SMART, ("O", "D", "EN")),
    ],
)
def test_programme_specific_codes_are_mapped_to_meeting_guide_codes(
    slug: str, programme: Programme, types: tuple[str, ...]
) -> None:
    item = by_slug(slug)

    assert (item.programme, item.types) == (programme, types)


def test_alateen_code_is_read_as_alateen_not_young_people() -> None:
    item = by_slug("kasba-alateen")

    assert [type_name(code, item.programme) for code in item.types] == ["Alateen", "Families and Friends Only"]


def test_meeting_without_a_timezone_gets_the_default_and_it_is_noted() -> None:
    result = parse_feed(KENDRA_FEED)
    item = by_slug("dum-dum-nar-anon")

    assert item.tz == "Asia/Kolkata"
    assert any(n.slug == "dum-dum-nar-anon" and "no timezone" in n.message for n in result.notes)
    assert by_slug("dum-dum-nar-anon", default_tz="Asia/Dhaka").tz == "Asia/Dhaka"


def test_mapped_and_midnight_rows_leave_notes_for_the_importer() -> None:
    notes = {(n.slug, n.message) for n in parse_feed(KENDRA_FEED).notes}

    assert ("behala-hope-na", "NA type JFT recorded as LIT.") in notes
    assert ("midnight-sangha", "ends after midnight (23:30 to 00:30).") in notes


@pytest.mark.parametrize(
    ("slug", "language"),
    [("behala-hope-na", "hi"), ("salt-lake-serenity", "en"), ("jadavpur-bangla", None)],
)
def test_language_is_read_from_the_language_type_code(slug: str, language: str | None) -> None:
    assert by_slug(slug).language == language


def test_updated_is_read_as_utc() -> None:
    assert by_slug("salt-lake-serenity").updated == datetime(2025, 2, 14, 9, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rows", "programme", "rejected"),
    [
        ([{"name": "Hope", "slug": "hope", "day": 1, "time": "19:00", "types": ["YA"]}], Programme.AL_ANON, 0),
        ([{"name": "Hope", "slug": "hope", "day": 1, "time": "19:00", "types": ["YA"]}], Programme.AA, 1),
        ([{"name": "Hope", "slug": "hope", "day": 1, "time": "19:00", "types": ["Y"]}], Programme.NAR_ANON, 1),
        ([{"name": "Hope", "slug": "hope", "day": 1, "time": "19:00", "types": ["POA"]}], Programme.AL_ANON, 0),
    ],
)
def test_the_same_code_is_accepted_or_rejected_by_programme(
    rows: list[dict[str, object]], programme: Programme, rejected: int
) -> None:
    assert len(parse_feed(rows, default_programme=programme).rejected) == rejected


# --- Round trip ----------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", GOOD_SLUGS)
def test_every_good_meeting_round_trips_through_an_exported_row(slug: str) -> None:
    original = by_slug(slug)

    row = to_feed_row(original)
    # The feed has no programme field; Saathi publishes one feed per programme, so the reader knows it.
    again = parse_feed([row], default_programme=original.programme)

    assert schema_errors(row) == []
    assert again.rejected == []
    (parsed,) = again.meetings
    assert (parsed.slug, parsed.days, parsed.start_local, parsed.tz, parsed.types) == (
        original.slug,
        original.days,
        original.start_local,
        original.tz,
        original.types,
    )
    assert (parsed.duration, parsed.programme, parsed.updated) == (
        original.duration,
        original.programme,
        original.updated,
    )
