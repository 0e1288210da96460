"""The standard feeds: Meeting Guide JSON (export and import terms) and iCalendar.

Reads only; the import's writes are `rooms.services.do_import_meetings`. The format knowledge lives in
the pure modules (rooms/meetingguide.py, rooms/schedule.py); this module maps models to and from them.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from icalendar import Alarm, Calendar, Event, vRecur

from rooms.meetingguide import FeedMeeting, Programme, to_feed_row
from rooms.models import Access, Meeting
from rooms.schedule import ScheduleError, get_zone, weekly_days

logger = logging.getLogger("saathi.feeds")

FAMILY_PROGRAMMES = frozenset({Programme.AL_ANON, Programme.NAR_ANON, Programme.FAMILY})


# --- Meeting Guide JSON -------------------------------------------------------------------------------


def feed_meeting(meeting: Meeting, *, room_url: str) -> FeedMeeting | None:
    """Return the meeting in feed terms, or None when the feed cannot say its schedule (not weekly)."""
    try:
        days = weekly_days(meeting.rrule)
    except ScheduleError:
        return None
    if days is None or meeting.duration >= timedelta(hours=24):
        return None
    return FeedMeeting(
        name=meeting.room.name,
        slug=meeting.slug,
        programme=Programme(meeting.room.programme),
        days=days,
        start_local=meeting.start_local,
        duration=meeting.duration,
        tz=meeting.tz,
        types=tuple(meeting.types),
        notes=meeting.notes,
        updated=meeting.updated_at,
        conference_url=room_url,
        conference_url_notes="Online in Saathi: open the link at the meeting time; doors open a few minutes early.",
        language=meeting.language or None,
        region=meeting.region or None,
        regions=tuple(meeting.regions),
        location=meeting.location or None,
    )


def meeting_guide_rows(meetings: Iterable[Meeting], *, room_url: Any) -> list[dict[str, object]]:
    """Return feed rows for meetings the feed can describe; `room_url(meeting)` gives conference_url."""
    rows = []
    for meeting in meetings:
        item = feed_meeting(meeting, room_url=room_url(meeting))
        if item is None:
            continue  # a monthly meeting, say: the Meeting Guide feed only has weekly days
        try:
            rows.append(to_feed_row(item))
        except ValueError as exc:
            logger.warning("meeting %s left out of the feed: %s", meeting.slug, exc)
    return rows


def access_for(programme: Programme, types: Iterable[str]) -> tuple[str, bool]:
    """Return (room access, open_to_members) that a feed row's programme and types ask for."""
    codes = set(types)
    if programme in FAMILY_PROGRAMMES:
        # A family group: family members join; "O" (families, friends and observers) lets members in too.
        return Access.FAMILY, "O" in codes
    if "W" in codes:
        return Access.WOMEN, False
    return (Access.CLOSED if "C" in codes else Access.OPEN), False


# --- Reading a feed from a file or a URL ----------------------------------------------------------------


class FeedSourceError(Exception):
    """The feed could not be read at all (as opposed to a bad row)."""


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise FeedSourceError(f"The feed redirected to {newurl!r}, which is not a web address.")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def read_feed_source(source: str) -> object:
    """Return the parsed JSON of a feed file or http(s) URL, with a timeout and a size cap."""
    limit = settings.SAATHI_FEED_MAX_BYTES
    scheme = urlsplit(source).scheme
    if scheme in ("http", "https"):
        opener = urllib.request.build_opener(_SafeRedirects)
        headers = {"User-Agent": "Saathi meeting import", "Accept": "application/json"}
        request = urllib.request.Request(source, headers=headers)  # noqa: S310  (http/https checked above)
        try:
            with opener.open(request, timeout=settings.SAATHI_FEED_FETCH_TIMEOUT) as response:
                raw = response.read(limit + 1)
        except FeedSourceError:
            raise
        except (OSError, ValueError) as exc:
            raise FeedSourceError(f"Could not fetch {source}: {exc}") from None
    elif scheme and len(scheme) > 1:
        raise FeedSourceError(f"Only http and https addresses (or a file) can be imported, not {scheme}:.")
    else:
        path = Path(source)
        if not path.is_file():
            raise FeedSourceError(f"There is no file at {source}.")
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise FeedSourceError(f"The feed is larger than {limit} bytes (SAATHI_FEED_MAX_BYTES).")
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FeedSourceError(f"The feed is not JSON: {exc}") from None


# --- iCalendar -----------------------------------------------------------------------------------------


def _event_for(meeting: Meeting, *, url: str, holidays: Iterable[Any], stamp: datetime) -> list[Event]:
    schedule = meeting.schedule(holidays=holidays)
    zone = get_zone(meeting.tz)
    first = datetime.combine(meeting.dtstart, meeting.start_local).replace(tzinfo=zone)
    event = Event()
    event.add("uid", f"{meeting.slug}@saathi")
    event.add("dtstamp", stamp)
    event.add("summary", meeting.room.name)
    event.add("dtstart", first)
    event.add("duration", meeting.duration)
    event.add("rrule", vRecur.from_ical(schedule.rrule))
    event.add("url", url)
    event.add("location", url)
    description = [meeting.room.description, meeting.notes, f"Join: {url}"]
    event.add("description", "\n\n".join(part for part in description if part))
    for day in sorted(schedule.cancelled | set(schedule.moved)):
        event.add("exdate", datetime.combine(day, meeting.start_local).replace(tzinfo=zone))
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", f"{meeting.room.name} starts in 15 minutes")
    alarm.add("trigger", timedelta(minutes=-15))
    event.add_component(alarm)
    events = [event]
    for day, new_start in sorted(schedule.moved.items()):
        moved = Event()
        moved.add("uid", f"{meeting.slug}@saathi")
        moved.add("dtstamp", stamp)
        moved.add("summary", f"{meeting.room.name} (moved)")
        moved.add("recurrence-id", datetime.combine(day, meeting.start_local).replace(tzinfo=zone))
        moved.add("dtstart", new_start.astimezone(zone))
        moved.add("duration", meeting.duration)
        moved.add("url", url)
        events.append(moved)
    return events


def calendar_for(meetings: Iterable[Meeting], *, url_for: Any, holidays: Iterable[Any] = (), name: str) -> bytes:
    """Return an iCalendar file with each meeting's recurrence in its own zone (VTIMEZONE included)."""
    calendar = Calendar()
    calendar.add("prodid", "-//Saathi//Meetings//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", name)
    stamp = datetime.now(UTC).replace(microsecond=0)
    holidays = list(holidays)
    for meeting in meetings:
        for event in _event_for(meeting, url=url_for(meeting), holidays=holidays, stamp=stamp):
            calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()
