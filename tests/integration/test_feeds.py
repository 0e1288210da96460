"""The Meeting Guide feed, the importer and the calendars, as the people who use them would notice."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import Client
from icalendar import Calendar

from rooms.meetingguide import parse_feed, schema_errors
from rooms.models import Access, Meeting, MeetingException, Programme, SavedMeeting
from tests.factories import make_user
from tests.meeting_factories import make_meeting

pytestmark = pytest.mark.django_db

DATA = Path(__file__).resolve().parent.parent / "data"
KENDRA = DATA / "kendra-feed.json"
SCHEMAS = DATA / "meeting-guide"


def import_feed(path: Path | str, *args: str) -> str:
    out = StringIO()
    call_command("import_meetings", str(path), *args, stdout=out)
    return out.getvalue()


def exported() -> list[dict]:
    response = Client().get("/meetings.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    return response.json()


def test_the_feed_saathi_publishes_validates_against_the_meeting_guide_schema():
    make_meeting(slug="kolkata-evening", types=["O", "D", "EN"], language="en", notes="Be gentle.")
    make_meeting(
        slug="family-saturday",
        programme=Programme.AL_ANON,
        access=Access.FAMILY,
        types=["C", "POA"],
        rrule="FREQ=WEEKLY;BYDAY=SA",
    )
    make_meeting(
        slug="ny-monday", tz="America/New_York", rrule="FREQ=WEEKLY;BYDAY=MO", types=["C", "B"], programme=Programme.AA
    )
    rows = exported()
    assert [row["slug"] for row in rows] == ["family-saturday", "kolkata-evening", "ny-monday"]
    for row in rows:
        assert schema_errors(row, schema_dir=SCHEMAS) == []
        assert row["timezone"] and row["conference_url"].endswith(f"/rooms/{row['slug']}/")
    saturday = rows[0]
    assert saturday["day"] == 6 and saturday["time"] == "19:00" and saturday["end_time"] == "20:00"
    assert rows[2]["day"] == 1  # Monday is 1 in the feed: 0 is Sunday


def test_a_monthly_meeting_is_left_out_of_the_weekly_feed_but_not_out_of_the_directory():
    make_meeting(slug="first-sunday", rrule="FREQ=MONTHLY;BYDAY=1SU")
    assert exported() == []


def test_a_kendra_feed_round_trips_through_import_and_export():
    source = json.loads(KENDRA.read_text())
    expected = parse_feed(source)
    report = import_feed(KENDRA)
    good = {m.slug: m for m in expected.meetings}
    assert f"{len(good)} created, 0 changed, 0 unchanged, {len(expected.rejected)} rejected." in report
    for row in expected.rejected:
        assert f"rejected row {row.index} ({row.slug_or_name}): {row.reason}" in report

    rows = exported()
    for row in rows:
        assert schema_errors(row, schema_dir=SCHEMAS) == []
    back = {m.slug: m for m in parse_feed(rows).meetings}
    assert back.keys() == good.keys()
    for slug, meeting in good.items():
        again = back[slug]
        assert (again.days, again.start_local, again.duration, again.tz, set(again.types)) == (
            meeting.days,
            meeting.start_local,
            meeting.duration,
            meeting.tz,
            set(meeting.types),
        ), slug


def test_importing_the_same_feed_again_changes_nothing_and_a_changed_row_is_reported():
    import_feed(KENDRA)
    again = import_feed(KENDRA)
    assert "0 created, 0 changed, 16 unchanged, 15 rejected." in again
    rows = json.loads(KENDRA.read_text())
    rows[0]["time"] = "19:30"
    rows[0]["end_time"] = "20:30"
    changed = KENDRA.parent / "kendra-changed.json"
    try:
        changed.write_text(json.dumps(rows))
        report = import_feed(changed)
    finally:
        changed.unlink()
    assert "changed  salt-lake-serenity: start_local" in report
    assert Meeting.objects.get(slug="salt-lake-serenity").start_local == time(19, 30)
    assert Meeting.objects.count() == 16


def test_type_codes_are_read_with_the_programme_poa_is_parents_in_al_anon():
    import_feed(KENDRA)
    al_anon = Meeting.objects.get(slug="ballygunge-al-anon")
    assert al_anon.room.programme == Programme.AL_ANON and al_anon.room.access == Access.FAMILY
    page = Client().get("/meetings/ballygunge-al-anon/").content.decode()
    assert "Parents of Alcoholics" in page and "Proof of Attendance" not in page
    women = Meeting.objects.get(slug="howrah-womens-circle")
    assert women.room.access == Access.WOMEN
    closed_aa = Meeting.objects.get(slug="park-street-big-book")
    assert closed_aa.room.access == Access.CLOSED


def test_a_feed_slug_that_is_already_a_plain_room_is_rejected_not_taken_over():
    from tests.factories import make_room

    make_room(slug="salt-lake-serenity")
    report = import_feed(KENDRA)
    assert "rejected row 0 (salt-lake-serenity): slug 'salt-lake-serenity' is already a Saathi room" in report


@pytest.mark.parametrize("source", ["ftp://example.org/feed.json", "file:///etc/passwd", "javascript:alert(1)"])
def test_import_only_reads_files_and_web_addresses(source):
    with pytest.raises(CommandError, match="Only http and https"):
        import_feed(source)


def test_import_refuses_a_feed_over_the_size_cap(settings, tmp_path):
    settings.SAATHI_FEED_MAX_BYTES = 100
    big = tmp_path / "big.json"
    big.write_text(json.dumps([{"name": "x" * 200, "slug": "x"}]))
    with pytest.raises(CommandError, match="larger than 100 bytes"):
        import_feed(big)


def test_import_of_a_url_has_a_timeout_and_reports_failure(settings):
    settings.SAATHI_FEED_FETCH_TIMEOUT = 1
    with pytest.raises(CommandError, match="Could not fetch"):
        import_feed("http://127.0.0.1:9/feed.json")  # the discard port: nothing listens


def test_a_meeting_calendar_carries_its_recurrence_zone_and_cancelled_dates():
    meeting = make_meeting(slug="ny-monday", tz="America/New_York", rrule="FREQ=WEEKLY;BYDAY=MO", start=time(19, 0))
    MeetingException.objects.create(meeting=meeting, local_date=date(2025, 3, 17))
    response = Client().get("/meetings/ny-monday.ics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    event = next(iter(calendar.walk("VEVENT")))
    assert event["RRULE"]["FREQ"] == ["WEEKLY"] and event["RRULE"]["BYDAY"] == ["MO"]
    start = event.decoded("DTSTART")
    assert str(start.tzinfo) == "America/New_York" and start.time() == time(19, 0)
    assert [z["TZID"] for z in calendar.walk("VTIMEZONE")] == ["America/New_York"]
    cancelled = [d.dt for d in event["EXDATE"].dts]
    assert cancelled[0].astimezone(UTC) == datetime(2025, 3, 17, 23, 0, tzinfo=UTC)  # 19:00 EDT
    assert event.decoded("DURATION") == timedelta(hours=1)
    assert any(alarm.decoded("TRIGGER") == timedelta(minutes=-15) for alarm in event.walk("VALARM"))


def test_a_members_saved_meetings_calendar_holds_only_their_meetings_and_is_private():
    mine = make_meeting(slug="mine")
    make_meeting(slug="not-mine")
    user = make_user()
    client = Client()
    assert client.get("/meetings/saved.ics").status_code == 302
    client.force_login(user)
    client.post("/meetings/mine/save/", {"saved": "yes"})
    assert SavedMeeting.objects.filter(user=user, meeting=mine).exists()
    response = client.get("/meetings/saved.ics")
    calendar = Calendar.from_ical(response.content)
    assert [str(e["UID"]) for e in calendar.walk("VEVENT")] == ["mine@saathi"]
    assert "no-store" in response["Cache-Control"]


@time_machine.travel(datetime(2025, 6, 2, 13, 25, tzinfo=UTC), tick=False)  # 18:55 Kolkata, 09:25 New York
def test_the_directory_shows_meetings_on_now_and_next_in_the_viewers_zone_with_join_only_when_doors_open():
    make_meeting(slug="kolkata-seven", start=time(19, 0))  # doors opened at 18:50 Kolkata
    make_meeting(slug="ny-evening", tz="America/New_York", start=time(19, 0))  # 04:30 Kolkata tomorrow
    page = Client().get("/meetings/?tz=Asia/Kolkata").content.decode()
    now_on, upcoming = page.split('id="upcoming"')
    assert "kolkata-seven" in now_on and "Doors open" in now_on and "/rooms/kolkata-seven/" in now_on
    assert "ny-evening" in upcoming and "Tue 3 Jun, 04:30 IST" in upcoming and "/rooms/ny-evening/" not in upcoming
    london = Client().get("/meetings/?tz=Europe/London").content.decode()
    assert "Mon 2 Jun, 14:30 BST" in london  # the Kolkata meeting, in London's summer time

    ny_page = Client().get("/meetings/ny-evening/?tz=Asia/Kolkata").content.decode()
    assert "Every day at 19:00 New York time (EDT, UTC-04:00)" in ny_page
    assert 'id="join" disabled' in ny_page and "Doors open Tue 3 Jun, 04:20 IST" in ny_page
    open_page = Client().get("/meetings/kolkata-seven/").content.decode()
    assert 'href="/rooms/kolkata-seven/">Join now' in open_page


@time_machine.travel(datetime(2025, 6, 2, 13, 25, tzinfo=UTC), tick=False)
def test_the_directory_filters_by_programme_type_language_and_time_of_day():
    make_meeting(slug="na-hindi", programme=Programme.NA, types=["O", "HI"], language="hi", start=time(19, 0))
    make_meeting(slug="aa-morning", programme=Programme.AA, types=["C", "B"], start=time(7, 0))
    client = Client()
    assert "na-hindi" in client.get("/meetings/?programme=na").content.decode()
    assert "aa-morning" not in client.get("/meetings/?programme=na").content.decode()
    assert "aa-morning" in client.get("/meetings/?type=B").content.decode()
    assert "aa-morning" not in client.get("/meetings/?language=hi").content.decode()
    morning = client.get("/meetings/?time=morning&tz=Asia/Kolkata").content.decode()
    assert "aa-morning" in morning and "na-hindi" not in morning


def test_a_members_family_never_sees_closed_meetings_in_the_directory():
    from accounts.models import User

    make_meeting(slug="closed-aa", access=Access.CLOSED, types=["C"])
    make_meeting(slug="family-group", access=Access.FAMILY, programme=Programme.AL_ANON, types=["C"])
    client = Client()
    client.force_login(make_user(kind=User.Kind.FAMILY))
    page = client.get("/meetings/").content.decode()
    assert "family-group" in page and "closed-aa" not in page
    assert client.get("/meetings/closed-aa/").status_code == 404
