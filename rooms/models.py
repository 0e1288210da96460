from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import models

from rooms.schedule import MeetingState, Schedule, state_at


class Programme(models.TextChoices):
    AA = "aa", "Alcoholics Anonymous"
    NA = "na", "Narcotics Anonymous"
    SMART = "smart", "SMART Recovery"
    AL_ANON = "al_anon", "Al-Anon"
    NAR_ANON = "nar_anon", "Nar-Anon"
    FAMILY = "family", "Family group"
    WOMENS_CIRCLE = "womens_circle", "Women's circle"
    THERAPIST_LED = "therapist_led", "Therapist-led group therapy"
    PEER_MENTORSHIP = "peer_mentorship", "Peer mentorship"
    AFTERCARE = "aftercare", "Aftercare"
    SHARING_CIRCLE = "sharing_circle", "Sharing circle"
    GENERAL = "general", "General"


class Access(models.TextChoices):
    OPEN = "open", "Open: anyone, guests included"
    CLOSED = "closed", "Closed: members in recovery"
    FAMILY = "family", "Family: family members"
    WOMEN = "women", "Women only (self-attested members)"
    PRIVATE = "private", "Private: a counsellor and one member"


class Retention(models.IntegerChoices):
    """How long messages are kept after they are sent, in hours."""

    DAY = 24, "24 hours"
    WEEK = 24 * 7, "7 days"
    MONTH = 24 * 30, "30 days"


class Room(models.Model):
    slug = models.SlugField(max_length=80, unique=True)  # never changes: links and feeds depend on it
    name = models.CharField(max_length=120)
    programme = models.CharField(max_length=32, choices=Programme.choices, default=Programme.GENERAL)
    access = models.CharField(max_length=16, choices=Access.choices, default=Access.OPEN)
    retention_hours = models.PositiveIntegerField(choices=Retention.choices, default=Retention.WEEK)
    description = models.TextField(blank=True)
    format_text = models.TextField("readings and format", blank=True)
    chairs = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="chaired_rooms")
    # Family rooms only: whether members in recovery may join too (Al-Anon "open" meetings).
    open_to_members = models.BooleanField(default=False)
    # A youth room, say, may hold `imminent` crisis messages for a counsellor instead of showing them.
    hold_imminent = models.BooleanField(
        default=False,
        help_text="Hold messages the crisis detector rates imminent for review instead of showing them.",
    )
    locked = models.BooleanField(default=False)
    slow_mode_seconds = models.PositiveIntegerField(default=0)
    # The last message number handed out in this room; messages are numbered 1, 2, 3... without gaps.
    last_seq = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # --- The floor: how the chair is running the meeting now ------------------------------------------
    # These belong to one meeting (`floor_starts_at`, the occurrence's start; None for an unscheduled
    # room). A new occurrence starts with sharing open, cross-talk off and nobody speaking, even if the
    # worker has not reset the row yet.
    floor_starts_at = models.DateTimeField(null=True, blank=True)
    sharing_open = models.BooleanField(default=True)
    crosstalk = models.BooleanField(default=False)
    share_seconds = models.PositiveIntegerField(default=0, help_text="Share timer in seconds; 0 means no timer.")
    speaker_key = models.CharField(max_length=40, blank=True)  # internal author key: never sent to peers
    speaker_handle = models.CharField(max_length=24, blank=True)
    timer_ends_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def retention(self) -> timedelta:
        return timedelta(hours=self.retention_hours)

    @property
    def retention_label(self) -> str:
        return (
            Retention(self.retention_hours).label
            if self.retention_hours in Retention.values
            else (f"{self.retention_hours} hours")
        )


def default_tz() -> str:
    return str(settings.SAATHI_DEFAULT_TZ)


def default_doors_open() -> timedelta:
    return timedelta(minutes=settings.SAATHI_DOORS_OPEN_MINUTES)


def default_ending_notice() -> timedelta:
    return timedelta(minutes=settings.SAATHI_ENDING_NOTICE_MINUTES)


class MeetingQuerySet(models.QuerySet["Meeting"]):
    def public(self) -> MeetingQuerySet:
        """Return the meetings listed in the directory and the feeds."""
        return self.filter(is_public=True).exclude(room__access=Access.PRIVATE)

    def with_schedule(self) -> MeetingQuerySet:
        return self.select_related("room").prefetch_related("exceptions")

    def visible_to(self, *, is_family: bool, is_staff: bool) -> MeetingQuerySet:
        """Return the meetings this person may see listed.

        A member's family never sees the members' closed meetings (the same rule as the room list).
        """
        if is_family and not is_staff:
            return self.exclude(room__access=Access.CLOSED)
        return self


class Meeting(models.Model):
    """A recurring series held in a room; rooms/schedule.py decides when it is open."""

    room = models.OneToOneField(Room, on_delete=models.CASCADE, related_name="meeting")
    # The Meeting Guide slug: never changes, because feeds, calendars and bookmarks depend on it.
    slug = models.SlugField(max_length=120, unique=True)
    types = models.JSONField(default=list, blank=True, help_text="Meeting Guide type codes, read with the programme.")
    rrule = models.CharField(
        "repeat rule",
        max_length=400,
        default="FREQ=WEEKLY;BYDAY=MO",
        help_text="An iCalendar RRULE, e.g. FREQ=WEEKLY;BYDAY=MO,TH",
    )
    start_local = models.TimeField("starts at (the meeting's own time)")
    duration = models.DurationField(default=timedelta(hours=1))
    tz = models.CharField("time zone", max_length=64, default=default_tz, help_text="An IANA name, e.g. Asia/Kolkata")
    dtstart = models.DateField("first date")
    until = models.DateField("last date", null=True, blank=True)
    doors_open = models.DurationField(
        default=default_doors_open, help_text="How long before the start the waiting room opens."
    )
    ending_notice = models.DurationField(default=default_ending_notice)
    observes_holidays = models.BooleanField(default=True)
    capacity = models.PositiveIntegerField(null=True, blank=True)
    language = models.CharField(max_length=8, default="en", help_text="ISO 639-1, e.g. en, hi, bn")
    notes = models.TextField(blank=True)
    location = models.CharField(max_length=200, blank=True, help_text="Where the in-person group meets, if anywhere.")
    region = models.CharField(max_length=100, blank=True)
    regions = models.JSONField(default=list, blank=True)
    is_public = models.BooleanField(default=True, help_text="Listed in the directory, /meetings.json and calendars.")
    imported_from = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # What the worker last applied: the phase and the occurrence it belongs to.
    applied_phase = models.CharField(max_length=16, blank=True)
    applied_starts_at = models.DateTimeField(null=True, blank=True)

    objects = MeetingQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.room.name

    def schedule(self, *, holidays: Iterable[date] = ()) -> Schedule:
        """Return the pure schedule, with this meeting's exceptions and (if it observes them) holidays."""
        exceptions = list(self.exceptions.all())
        moved = {e.local_date: e.moved_to for e in exceptions if e.moved_to is not None}
        cancelled = {e.local_date for e in exceptions if e.moved_to is None}
        if self.observes_holidays:
            cancelled |= set(holidays) - moved.keys()
        return Schedule(
            rrule=self.rrule,
            start_local=self.start_local,
            duration=self.duration,
            tz=self.tz,
            dtstart=self.dtstart,
            until=self.until,
            doors_open=self.doors_open,
            ending_notice=self.ending_notice,
            cancelled=frozenset(cancelled),
            moved=moved,
        )

    def state_at(self, now: datetime, *, holidays: Iterable[date] = ()) -> MeetingState:
        """Return the meeting's phase at `now` (rooms/schedule.py decides)."""
        return state_at(self.schedule(holidays=holidays), now)


class MeetingException(models.Model):
    """One date of a series cancelled, or moved to another start."""

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="exceptions")
    local_date = models.DateField(help_text="The series date, in the meeting's own zone.")
    moved_to = models.DateTimeField(null=True, blank=True, help_text="Empty: cancelled. Set: the new start.")
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["local_date"]
        constraints = [models.UniqueConstraint(fields=["meeting", "local_date"], name="one_exception_per_date")]

    def __str__(self) -> str:
        return f"{self.meeting.slug} {self.local_date}: {'moved' if self.moved_to else 'cancelled'}"


class Holiday(models.Model):
    """A date on which meetings that observe holidays do not meet (in each meeting's own zone)."""

    date = models.DateField(unique=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.name} ({self.date})"


class Hand(models.Model):
    """A raised hand in a room's speaking queue."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="hands")
    author_key = models.CharField(max_length=40)
    handle = models.CharField(max_length=24)
    raised_at = models.DateTimeField()

    class Meta:
        ordering = ["raised_at", "id"]
        constraints = [models.UniqueConstraint(fields=["room", "author_key"], name="one_hand_per_person")]

    def __str__(self) -> str:
        return f"{self.handle} in {self.room_id}"


class SavedMeeting(models.Model):
    """A member's saved meeting, for their calendar."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_meetings")
    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="saved_by")
    saved_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "meeting"], name="save_a_meeting_once")]

    def __str__(self) -> str:
        return f"{self.user_id} saved {self.meeting_id}"
