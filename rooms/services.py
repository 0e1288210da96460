"""What rooms decide: who may come in, whether a room is open now, and how its meeting is run."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.identity import Participant
from accounts.models import Role, User
from chat import broadcast, protocol
from chat.protocol import CloseCode, ErrorCode, ProtocolError
from moderation.selectors import barring_restriction, invited_to_private_room
from rooms.feeds import access_for
from rooms.meetingguide import FeedMeeting, RejectedRow, RowNote, parse_feed
from rooms.milestones import Milestone, current_milestone
from rooms.models import Access, Hand, Holiday, Meeting, Room, SavedMeeting
from rooms.schedule import DEFAULT_TZ, MeetingState, Occurrence, Phase, ScheduleError, get_zone, weekly_rrule


@dataclass(frozen=True, slots=True)
class AccessDecision:
    allowed: bool
    close_code: int | None = None
    reason: str = ""
    opens_at: datetime | None = None

    @classmethod
    def allow(cls) -> AccessDecision:
        return cls(allowed=True)

    @classmethod
    def deny(cls, code: CloseCode, reason: str, opens_at: datetime | None = None) -> AccessDecision:
        return cls(allowed=False, close_code=int(code), reason=reason, opens_at=opens_at)


@dataclass(frozen=True, slots=True)
class RoomSwitches:
    """The parts of a room a send is checked against, read fresh for every batch of sends (chat.services).

    Not a Room: the send path reads these for every room in every batch, and building a Room (21 fields,
    defaults filled in) cost more than reading them did. `room_state` and the send rules accept either.
    """

    pk: int
    locked: bool
    slow_mode_seconds: int
    sharing_open: bool
    floor_starts_at: datetime | None
    hold_imminent: bool
    has_meeting: bool


@dataclass(frozen=True, slots=True)
class RoomState:
    """Where a room is in its meeting at an instant, computed from the schedule (not the worker)."""

    phase: str  # "live", "doors_open", "ending", "scheduled", "closed"
    closes_at: datetime | None = None
    opens_at: datetime | None = None  # when the doors next open, if the room is not open now
    starts_at: datetime | None = None  # the start of the meeting under way or next
    minutes_to_start: int | None = None
    sharing_open: bool = True
    scheduled: bool = False

    @property
    def accepts_messages(self) -> bool:
        return self.phase in ("live", "ending") and self.sharing_open

    @property
    def admits_people(self) -> bool:
        return self.phase in ("live", "ending", "doors_open")


@dataclass(slots=True)
class Schedule:
    """A room's meeting (None: the room has no schedule) and the holidays, read once for several questions.

    A socket joining a meeting asks whether it may come in, the room's phase, the `meeting` frame and the
    queue; answered apart, each read the meeting and the holidays and computed the recurrence again, and at a
    meeting's start every member arrives at once (`read_schedule`).
    """

    meeting: Meeting | None
    holidays: frozenset[date]
    _states: dict[datetime, MeetingState] = field(default_factory=dict)

    def state_at(self, now: datetime) -> MeetingState:
        assert self.meeting is not None
        if now not in self._states:
            self._states[now] = self.meeting.state_at(now, holidays=self.holidays)
        return self._states[now]


_UNSCHEDULED = Schedule(None, frozenset())  # never memoises a state: there is no meeting to compute one from


def read_schedule(room: Room | RoomSwitches) -> Schedule:
    """The room's schedule as it is now (two queries when it has one, one when it doesn't)."""
    meeting = Meeting.objects.with_schedule().filter(room_id=room.pk).first()
    return Schedule(meeting, holiday_dates() if meeting is not None else frozenset())


def room_state(
    room: Room | RoomSwitches, *, now: datetime | None = None, schedule: Schedule | None = None
) -> RoomState:
    """Return where the room is in its meeting: a room with no schedule is always live.

    Computed from the schedule at `now`, so pages and sockets are right even when the worker is late.
    """
    now = now or timezone.now()
    if schedule is None:
        # A caller that knows whether the room has a schedule (RoomSwitches, the send path) spares this query.
        has_meeting = getattr(room, "has_meeting", None)
        schedule = _UNSCHEDULED if has_meeting is False else read_schedule(room)
    if schedule.meeting is None:
        return RoomState(phase="live", sharing_open=room.sharing_open)
    return _state_from_schedule(schedule.state_at(now), room, now)


def check_room_access(
    room: Room, participant: Participant | None, *, now: datetime | None = None, schedule: Schedule | None = None
) -> AccessDecision:
    """Decide whether this person may join this room. The one place the access rules live."""
    now = now or timezone.now()
    if room.access == Access.PRIVATE and not _sees_private_room(room, participant):
        # A private room's existence is itself private: answer as for a room that doesn't exist (4404, HTTP 404).
        return AccessDecision.deny(CloseCode.NO_SUCH_ROOM, "There is no such meeting.")
    if participant is None:
        return AccessDecision.deny(CloseCode.NOT_SIGNED_IN, "Sign in, or join as a guest, to enter a meeting.")
    if barring_restriction(author_key=participant.author_key, room=room, now=now):
        return AccessDecision.deny(CloseCode.NOT_ALLOWED, "You can't join this meeting.")
    is_staff = participant.is_staff_role
    is_chair = participant.user_id is not None and room.chairs.filter(pk=participant.user_id).exists()
    # Staff may enter any room but a private one: that is for its counsellor (its chair) and one member.
    if not (is_chair or (is_staff and room.access != Access.PRIVATE)):
        rule_reason = _access_rule_refusal(room, participant)
        if rule_reason:
            code = (
                CloseCode.NOT_SIGNED_IN
                if participant.is_guest and room.access != Access.OPEN
                else CloseCode.NOT_ALLOWED
            )
            return AccessDecision.deny(code, rule_reason)
    state = room_state(room, now=now, schedule=schedule)
    if not state.admits_people and not is_staff:
        return AccessDecision.deny(CloseCode.NOT_OPEN, "This meeting is not open now.", opens_at=state.opens_at)
    return AccessDecision.allow()


def _sees_private_room(room: Room, who: Participant | None) -> bool:
    """Return whether this person may know a private room exists: its counsellor (chair) and its one invitee."""
    if who is None:
        return False
    is_chair = who.user_id is not None and room.chairs.filter(pk=who.user_id).exists()
    return is_chair or invited_to_private_room(room=room, author_key=who.author_key)


def _access_rule_refusal(room: Room, who: Participant) -> str:
    access = room.access
    if access == Access.OPEN:
        return ""
    if access == Access.PRIVATE:
        # A counsellor's private room admits the one person it was opened for (a guest too), and its counsellor.
        return "" if invited_to_private_room(room=room, author_key=who.author_key) else "This is a private room."
    if who.is_guest:
        return "This meeting is for signed-in members. Create a free account to join."
    if access == Access.CLOSED:
        return "" if not who.is_family else "This is a closed meeting for people in recovery."
    if access == Access.FAMILY:
        if who.is_family or room.open_to_members:
            return ""
        return "This group is for family members."
    if access == Access.WOMEN:
        return "" if who.attests_woman else "This circle is for women. Confirm on the room page to join."
    return "You can't join this meeting."


def rooms_listed_for(participant: Participant | None) -> list[Room]:
    """Return the rooms to show in the room list, including ones this person can't enter yet."""
    rooms = Room.objects.exclude(access=Access.PRIVATE)
    if participant is not None and participant.is_family and not participant.is_staff_role:
        # A member's family never sees the members' closed rooms (and the reverse is just as private).
        rooms = rooms.exclude(access=Access.CLOSED)
    return list(rooms)


def chairs_room(room: Room, participant: Participant) -> bool:
    return participant.user_id is not None and (
        participant.has_role(Role.ADMIN) or room.chairs.filter(pk=participant.user_id).exists()
    )


# --- Meetings: the schedule at an instant -----------------------------------------------------------


def holiday_dates() -> frozenset[date]:
    """Return the dates on which meetings that observe holidays do not meet."""
    return frozenset(Holiday.objects.values_list("date", flat=True))


def _state_from_schedule(state: MeetingState, room: Room | RoomSwitches, now: datetime) -> RoomState:
    occurrence = state.occurrence
    if state.phase in (Phase.DOORS_OPEN, Phase.LIVE, Phase.ENDING):
        assert occurrence is not None
        opens_at = None
        starts_at = occurrence.starts_at
        closes_at = occurrence.ends_at
        sharing = room.sharing_open if room.floor_starts_at == occurrence.starts_at else True
    else:
        following = state.next_occurrence
        opens_at = following.doors_open_at if following else None
        starts_at = following.starts_at if following else None
        closes_at = None
        sharing = False
    return RoomState(
        phase=str(state.phase),
        closes_at=closes_at,
        opens_at=opens_at,
        starts_at=starts_at,
        minutes_to_start=state.minutes_to_start,
        sharing_open=sharing,
        scheduled=True,
    )


def current_occurrence(room: Room, *, now: datetime, schedule: Schedule | None = None) -> Occurrence | None:
    """Return the meeting under way in the room (doors open to end), or None (also for unscheduled rooms)."""
    schedule = schedule or read_schedule(room)
    if schedule.meeting is None:
        return None
    state = schedule.state_at(now)
    return state.occurrence if state.phase in (Phase.DOORS_OPEN, Phase.LIVE, Phase.ENDING) else None


@dataclass(frozen=True, slots=True)
class Floor:
    """How the chair is running the meeting now, as everyone in the room may see it."""

    sharing_open: bool
    crosstalk: bool
    share_seconds: int
    speaking: str | None
    timer_ends_at: datetime | None


def _floor_of(room: Room, occurrence_start: datetime | None, meeting_types: Iterable[str] = ()) -> Floor:
    if room.floor_starts_at != occurrence_start:
        # The chair's settings belong to an earlier meeting: this one starts fresh.
        return Floor(True, "XT" in meeting_types, room.share_seconds, None, None)
    return Floor(
        room.sharing_open,
        room.crosstalk,
        room.share_seconds,
        room.speaker_handle or None,
        room.timer_ends_at,
    )


def meeting_status(room: Room, *, now: datetime, schedule: Schedule | None = None) -> dict[str, Any]:
    """Return the room's meeting state and floor for a `meeting` frame (no account ids, no keys)."""
    room.refresh_from_db()
    schedule = schedule or read_schedule(room)
    if schedule.meeting is None:
        state = RoomState(phase="live", sharing_open=room.sharing_open)
        floor = _floor_of(room, None)
    else:
        state = _state_from_schedule(schedule.state_at(now), room, now)
        floor = _floor_of(room, state.starts_at if state.admits_people else None, schedule.meeting.types)
    return protocol.meeting_frame(
        state=state.phase,
        starts_at=state.starts_at,
        closes_at=state.closes_at,
        opens_at=state.opens_at,
        minutes_to_start=state.minutes_to_start if state.phase == Phase.DOORS_OPEN else None,
        sharing=state.accepts_messages if state.scheduled else floor.sharing_open,
        crosstalk=floor.crosstalk,
        share_seconds=floor.share_seconds,
        speaking=floor.speaking if state.admits_people else None,
        timer_ends_at=floor.timer_ends_at if floor.timer_ends_at and floor.timer_ends_at > now else None,
    )


def queue_handles(room: Room, *, now: datetime, schedule: Schedule | None = None) -> list[str]:
    """Return the speaking queue of the meeting under way, in the order hands went up."""
    schedule = schedule or read_schedule(room)
    hands = Hand.objects.filter(room=room)
    occurrence = current_occurrence(room, now=now, schedule=schedule)
    if occurrence is not None:
        hands = hands.filter(raised_at__gte=occurrence.doors_open_at)
    elif schedule.meeting is not None:
        return []
    return list(hands.values_list("handle", flat=True))


# --- The chair's tools and the speaking queue -------------------------------------------------------


def runs_floor(room: Room, participant: Participant) -> bool:
    """Return whether this person may run the meeting: its chairs, and staff."""
    return participant.is_staff_role or chairs_room(room, participant)


def _require_runs_floor(room: Room, participant: Participant) -> None:
    if not runs_floor(room, participant):
        raise ProtocolError(ErrorCode.NOT_ALLOWED, "Only the meeting's chair can do that.")


def _require_in_meeting(room: Room, now: datetime) -> RoomState:
    state = room_state(room, now=now)
    if not state.admits_people:
        raise ProtocolError(ErrorCode.NOT_ALLOWED, "The meeting isn't open now.")
    return state


def _locked_floor(room: Room, now: datetime) -> Room:
    """Lock the room row and make its floor belong to the meeting under way (fresh if it was older)."""
    locked = Room.objects.select_for_update().get(pk=room.pk)
    occurrence = current_occurrence(locked, now=now)
    start = occurrence.starts_at if occurrence else None
    if locked.floor_starts_at != start:
        meeting = Meeting.objects.filter(room_id=room.pk).first()
        fresh = _floor_of(locked, start, meeting.types if meeting else ())
        locked.floor_starts_at = start
        locked.sharing_open = fresh.sharing_open
        locked.crosstalk = fresh.crosstalk
        locked.speaker_key = locked.speaker_handle = ""
        locked.timer_ends_at = None
        Hand.objects.filter(room=locked).delete()
    return locked


def _publish_meeting_status(room: Room, now: datetime) -> None:
    frame = meeting_status(room, now=now)
    broadcast.publish_room_frame_on_commit(slug=room.slug, seq=None, text=protocol.encode(frame))


def _publish_queue(room: Room, now: datetime) -> list[str]:
    handles = queue_handles(room, now=now)
    speaking = room.speaker_handle or None
    frame = protocol.queue_frame(handles, speaking=speaking)
    broadcast.publish_room_frame_on_commit(slug=room.slug, seq=None, text=protocol.encode(frame))
    return handles


def _publish_notice(room: Room, code: protocol.NoticeCode, text: str, **extra: Any) -> None:
    frame = protocol.notice_frame(code, text, **extra)
    broadcast.publish_room_frame_on_commit(slug=room.slug, seq=None, text=protocol.encode(frame))


@transaction.atomic
def do_raise_hand(*, room: Room, participant: Participant, up: bool, now: datetime) -> list[str]:
    """Join (up) or leave the speaking queue; everyone in the room gets the new queue after commit."""
    _require_in_meeting(room, now)
    locked = _locked_floor(room, now)
    if up:
        Hand.objects.get_or_create(
            room=locked,
            author_key=participant.author_key,
            defaults={"handle": participant.handle, "raised_at": now},
        )
    else:
        Hand.objects.filter(room=locked, author_key=participant.author_key).delete()
    locked.save()
    return _publish_queue(locked, now)


@transaction.atomic
def do_call_next(*, room: Room, participant: Participant, now: datetime) -> str | None:
    """Give the floor to the first raised hand (the chair's call); start the share timer if one is set.

    Returns the handle now speaking, or None when nobody is waiting (the floor is then free).
    """
    _require_runs_floor(room, participant)
    _require_in_meeting(room, now)
    locked = _locked_floor(room, now)
    hand = Hand.objects.filter(room=locked).first()  # _locked_floor cleared hands from earlier meetings
    if hand is None:
        locked.speaker_key = locked.speaker_handle = ""
        locked.timer_ends_at = None
    else:
        locked.speaker_key, locked.speaker_handle = hand.author_key, hand.handle
        locked.timer_ends_at = now + timedelta(seconds=locked.share_seconds) if locked.share_seconds else None
        hand.delete()
    locked.save()
    _publish_queue(locked, now)
    _publish_meeting_status(locked, now)
    if hand is not None:
        # Only the person called gets this one: peers see the queue frame's `speaking`.
        frame = protocol.notice_frame(protocol.NoticeCode.YOUR_TURN, "It's your turn to share.")
        broadcast.publish_room_frame_on_commit(
            slug=locked.slug, seq=None, text=None, own=protocol.encode(frame), author_key=hand.author_key
        )
    return hand.handle if hand else None


@transaction.atomic
def do_run_floor(
    *, room: Room, participant: Participant, action: protocol.ChairAction, seconds: int | None, now: datetime
) -> None:
    """Apply one of the chair's tools: readings, open/close sharing, cross-talk, the share timer."""
    _require_runs_floor(room, participant)
    _require_in_meeting(room, now)
    locked = _locked_floor(room, now)
    Action = protocol.ChairAction
    if action == Action.READINGS:
        text = locked.format_text.strip()
        if not text:
            raise ProtocolError(ErrorCode.NOT_FOUND, "This meeting has no readings saved yet.")
        frame = protocol.readings_frame(text)
        broadcast.publish_room_frame_on_commit(slug=locked.slug, seq=None, text=protocol.encode(frame))
        return
    if action in (Action.OPEN_SHARING, Action.CLOSE_SHARING):
        locked.sharing_open = action == Action.OPEN_SHARING
        words = "Sharing is open." if locked.sharing_open else "Sharing is closed for now."
        code = protocol.NoticeCode.SHARING_OPEN if locked.sharing_open else protocol.NoticeCode.SHARING_CLOSED
    elif action in (Action.CROSSTALK_ON, Action.CROSSTALK_OFF):
        locked.crosstalk = action == Action.CROSSTALK_ON
        words = (
            "Cross-talk is on: you may respond to each other's shares."
            if locked.crosstalk
            else "Cross-talk is off: please share about your own experience, not respond to others."
        )
        code = protocol.NoticeCode.CROSSTALK
    elif action == Action.TIMER:
        locked.share_seconds = seconds or 0
        if locked.share_seconds and locked.speaker_handle:
            locked.timer_ends_at = now + timedelta(seconds=locked.share_seconds)
        elif not locked.share_seconds:
            locked.timer_ends_at = None
        words = (
            f"Shares are timed: {_duration_words(locked.share_seconds)} each."
            if locked.share_seconds
            else "Shares are not timed."
        )
        code = protocol.NoticeCode.TIMER
    else:  # pragma: no cover - the parser only produces the actions above
        raise ProtocolError(ErrorCode.INVALID, "Unknown chair action.")
    locked.save()
    _publish_notice(locked, code, words)
    _publish_meeting_status(locked, now)


def _duration_words(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    if minutes and rest:
        return f"{minutes} min {rest} s"
    return f"{minutes} minute{'s' if minutes != 1 else ''}" if minutes else f"{rest} seconds"


# --- Milestones (the sobriety date is private; only a chosen milestone is ever shared) -----------------


@transaction.atomic
def do_set_sobriety_date(*, user: User, sobriety_date: date | None) -> None:
    """Set, reset or clear a member's private sobriety date. Never announced anywhere."""
    user.sobriety_date = sobriety_date
    user.save(update_fields=["sobriety_date"])


def milestone_for(user: User, *, now: datetime, tz: str = DEFAULT_TZ) -> Milestone | None:
    """Return the milestone this member could share today (in `tz`), or None."""
    if user.sobriety_date is None:
        return None
    return current_milestone(user.sobriety_date, now.astimezone(get_zone(tz)).date())


@transaction.atomic
def do_share_milestone(*, room: Room, participant: Participant, now: datetime) -> Milestone:
    """Celebrate the member's current milestone in the room, at their choice. Guests have none."""
    _require_in_meeting(room, now)
    if participant.user_id is None:
        raise ProtocolError(ErrorCode.NOT_ALLOWED, "Milestones are kept by members: create an account to keep yours.")
    user = User.objects.get(pk=participant.user_id)
    meeting = Meeting.objects.filter(room_id=room.pk).first()
    milestone = milestone_for(user, now=now, tz=meeting.tz if meeting else DEFAULT_TZ)
    if milestone is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "Add your sobriety date (it stays private) to share a milestone.")
    frame = protocol.milestone_frame(handle=participant.handle, code=milestone.code, label=milestone.label)
    broadcast.publish_room_frame_on_commit(slug=room.slug, seq=None, text=protocol.encode(frame))
    return milestone


# --- Saved meetings -----------------------------------------------------------------------------------


@transaction.atomic
def do_save_meeting(*, user: User, meeting: Meeting, saved: bool) -> None:
    """Add a meeting to, or remove it from, a member's saved meetings (their calendar)."""
    if saved:
        SavedMeeting.objects.get_or_create(user=user, meeting=meeting)
    else:
        SavedMeeting.objects.filter(user=user, meeting=meeting).delete()


# --- The worker step ----------------------------------------------------------------------------------

_NOTICE_FOR_PHASE = {
    Phase.DOORS_OPEN: protocol.NoticeCode.STARTS_SOON,
    Phase.LIVE: protocol.NoticeCode.LIVE,
    Phase.ENDING: protocol.NoticeCode.ENDING,
    Phase.CLOSED: protocol.NoticeCode.CLOSED,
}


def _phase_words(state: MeetingState, now: datetime) -> str:
    if state.phase == Phase.DOORS_OPEN:
        minutes = state.minutes_to_start or 0
        return f"Doors are open. The meeting starts in {minutes} minute{'s' if minutes != 1 else ''}."
    if state.phase == Phase.LIVE:
        return "The meeting has started. Welcome."
    if state.phase == Phase.ENDING:
        assert state.occurrence is not None
        minutes = max(1, math.ceil((state.occurrence.ends_at - now).total_seconds() / 60))
        return f"The meeting ends in {minutes} minute{'s' if minutes != 1 else ''}."
    return "The meeting has ended. Thank you for coming. The room is read-only now."


def open_and_close_meetings(*, now: datetime) -> int:
    """Apply the schedule to every meeting room and announce each change once; return how many changed.

    Locked and idempotent: a meeting whose phase the worker has already applied is left alone, and on
    PostgreSQL a meeting another worker holds is skipped (it is doing the same work).
    """
    holidays = holiday_dates()
    changed = 0
    for pk in Meeting.objects.values_list("pk", flat=True):
        changed += _apply_schedule(pk, now=now, holidays=holidays)
    return changed


@transaction.atomic
def _apply_schedule(pk: int, *, now: datetime, holidays: frozenset[date]) -> int:
    rows = Meeting.objects.filter(pk=pk)
    if connection.features.has_select_for_update_skip_locked:
        rows = rows.select_for_update(skip_locked=True, of=("self",))
    meeting = rows.select_related("room").prefetch_related("exceptions").first()
    if meeting is None:
        return 0  # another worker has it
    state = meeting.state_at(now, holidays=holidays)
    starts_at = state.occurrence.starts_at if state.occurrence else None
    if meeting.applied_phase == state.phase and meeting.applied_starts_at == starts_at:
        return 0
    first_time = meeting.applied_phase == ""
    meeting.applied_phase, meeting.applied_starts_at = str(state.phase), starts_at
    meeting.save(update_fields=["applied_phase", "applied_starts_at"])
    room = meeting.room
    # A new meeting, or the end of one: nobody is still waiting to speak from before.
    new_meeting = state.phase in (Phase.DOORS_OPEN, Phase.LIVE, Phase.ENDING) and room.floor_starts_at != starts_at
    if new_meeting or state.phase == Phase.CLOSED:
        Hand.objects.filter(room=room).delete()
        Room.objects.filter(pk=room.pk).update(speaker_key="", speaker_handle="", timer_ends_at=None)
    code = _NOTICE_FOR_PHASE.get(state.phase)
    if code is not None and not (first_time and state.phase == Phase.CLOSED):
        extra: dict[str, Any] = {}
        if starts_at is not None and state.phase == Phase.DOORS_OPEN:
            extra["starts_at"] = protocol.iso(starts_at)
        _publish_notice(room, code, _phase_words(state, now), **extra)
        _publish_meeting_status(room, now)
    return 1


# --- Import from a Meeting Guide feed -------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import did: slugs created, changed (with the fields), unchanged, and rows rejected."""

    created: list[str] = field(default_factory=list)
    changed: list[tuple[str, list[str]]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    notes: list[RowNote] = field(default_factory=list)


def do_import_meetings(
    *,
    data: object,
    source: str,
    today: date,
    default_programme: str | None = None,
    default_tz: str | None = None,
) -> ImportReport:
    """Create or update meetings from a Meeting Guide feed, by slug; a bad row is rejected, never the feed.

    Idempotent: importing the same feed again changes nothing. Slugs never change; a row whose slug
    belongs to a room that is not a scheduled meeting is rejected rather than taken over.
    """
    parsed = parse_feed(data, default_programme=default_programme, default_tz=default_tz or settings.SAATHI_DEFAULT_TZ)
    report = ImportReport(rejected=list(parsed.rejected), notes=list(parsed.notes))
    index_of = {note.slug: note.index for note in parsed.notes}
    for position, item in enumerate(parsed.meetings):
        try:
            with transaction.atomic():
                outcome, fields = _import_one(item, source=source, today=today)
        except (ScheduleError, ValueError) as exc:
            report.rejected.append(RejectedRow(index_of.get(item.slug, position), item.slug, str(exc)))
            continue
        if outcome == "created":
            report.created.append(item.slug)
        elif fields:
            report.changed.append((item.slug, fields))
        else:
            report.unchanged.append(item.slug)
    report.rejected.sort(key=lambda row: row.index)
    return report


def validate_slug_text(slug: str) -> bool:
    """Return whether a feed slug can also be a room address (Django's slug: letters, digits, - and _)."""
    return bool(_ROOM_SLUG.match(slug))


_ROOM_SLUG = re.compile(r"^[-a-zA-Z0-9_]+\Z")


def _import_one(item: FeedMeeting, *, source: str, today: date) -> tuple[str, list[str]]:
    if len(item.slug) > Room._meta.get_field("slug").max_length:  # type: ignore[operator]
        raise ValueError(
            f"slug {item.slug!r} is longer than Saathi's {Room._meta.get_field('slug').max_length} characters."
        )
    if not validate_slug_text(item.slug):
        raise ValueError(f"slug {item.slug!r} can't be a Saathi address: use letters, digits, '-' and '_' only.")
    access, open_to_members = access_for(item.programme, item.types)
    room_fields: dict[str, Any] = {
        "name": item.name[: Room._meta.get_field("name").max_length],  # type: ignore[index]
        "programme": str(item.programme),
        "access": access,
        "open_to_members": open_to_members,
    }
    meeting_fields: dict[str, Any] = {
        "types": list(item.types),
        "rrule": weekly_rrule(item.days),
        "start_local": item.start_local,
        "duration": item.duration,
        "tz": item.tz,
        "language": item.language or "",
        "notes": item.notes,
        "location": item.location or "",
        "region": item.region or "",
        "regions": list(item.regions),
        "imported_from": source[:500],
    }
    meeting = Meeting.objects.select_for_update().select_related("room").filter(slug=item.slug).first()
    if meeting is None:
        if Room.objects.filter(slug=item.slug).exists():
            raise ValueError(f"slug {item.slug!r} is already a Saathi room that is not a scheduled meeting.")
        room = Room.objects.create(slug=item.slug, description=item.notes, **room_fields)
        Meeting.objects.create(room=room, slug=item.slug, dtstart=today, **meeting_fields)
        return "created", []
    changed = [name for name, value in room_fields.items() if getattr(meeting.room, name) != value]
    changed += [
        name for name, value in meeting_fields.items() if name != "imported_from" and getattr(meeting, name) != value
    ]
    if changed:
        for name, value in room_fields.items():
            setattr(meeting.room, name, value)
        meeting.room.save()
        for name, value in meeting_fields.items():
            setattr(meeting, name, value)
        meeting.save()
    return "updated", changed
