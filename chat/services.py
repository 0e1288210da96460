"""What the chat does: post a message (stored first, then broadcast), and the checks before it."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.identity import Participant
from accounts.models import GuestPass
from chat import broadcast, ratelimit
from chat.frames import encoded_pair, message_frame
from chat.models import Message
from chat.protocol import ErrorCode, ProtocolError
from chat.protocol import encode as protocol_encode
from moderation import services as moderation
from moderation.models import Restriction
from moderation.selectors import active_mute
from rooms.models import Meeting, Room
from rooms.services import chairs_room, meeting_status, queue_handles, room_state


@dataclass(frozen=True, slots=True)
class PostResult:
    message: Message
    created: bool  # False when this client_id was already stored: the stored copy is returned


def check_post_message(
    *, room: Room, participant: Participant, body: str, client_id: uuid.UUID, now: datetime | None = None
) -> PostResult:
    """Apply the room's rules to a send, then store it. Raises ProtocolError with a readable reason.

    A retry of a message that is already stored (same client_id) always gets the stored copy back, even
    if the rules would now refuse a new one.
    """
    now = now or timezone.now()
    try:
        _check_room_rules(room=room, participant=participant, now=now, cid=str(client_id))
    except ProtocolError:
        stored = _stored_copy(room, participant, client_id)
        if stored is not None:
            return PostResult(message=stored, created=False)
        raise
    try:
        return do_post_message(room=room, participant=participant, body=body, client_id=client_id)
    except IntegrityError:  # already stored (a retry, or a race on another socket): return the stored copy
        stored = _stored_copy(room, participant, client_id)
        if stored is None:
            raise
        return PostResult(message=stored, created=False)


def _stored_copy(room: Room, participant: Participant, client_id: uuid.UUID) -> Message | None:
    return Message.objects.filter(room=room, author_key=participant.author_key, client_id=client_id).first()


def _check_room_rules(*, room: Room, participant: Participant, now: datetime, cid: str) -> None:
    """Refuse a send the room's state, a mute, slow mode or the rate limit doesn't allow.

    Sending is the hot path: the room's switches, whether it has a schedule and whether this person is
    muted come back in one query; whether they run the room is only asked when something would refuse them.
    """
    current = _room_switches(room=room, author_key=participant.author_key, now=now)
    runs_room = _lazy(lambda: participant.is_staff_role or chairs_room(room, participant))
    if not room_state(current, now=now).accepts_messages and not runs_room():
        raise ProtocolError(ErrorCode.NOT_ALLOWED, "The meeting isn't open for sharing right now.", cid)
    if current.locked and not runs_room():
        raise ProtocolError(ErrorCode.LOCKED, "The room is locked by the chair for now.", cid)
    if current.muted and not runs_room():
        mute = active_mute(author_key=participant.author_key, room=room, now=now)
        until = f" until {mute.until:%H:%M} UTC" if mute is not None and mute.until else ""
        raise ProtocolError(ErrorCode.MUTED, f"You are muted in this room{until}.", cid)
    slow = current.slow_mode_seconds
    if slow and not runs_room() and not ratelimit.hit(f"1/{slow}second", "slow", str(room.pk), participant.author_key):
        raise ProtocolError(ErrorCode.RATE_LIMITED, f"Slow mode: one message every {slow} seconds.", cid)
    if not ratelimit.hit(settings.SAATHI_SEND_RATE, "send", str(room.pk), participant.author_key):
        raise ProtocolError(ErrorCode.RATE_LIMITED, "You're sending quickly. Take a breath and try again shortly.", cid)


def _room_switches(*, room: Room, author_key: str, now: datetime) -> Room:
    """The room's send-time switches, plus `has_meeting` and `muted` for this author, in one statement.

    Written as SQL because it runs for every message: building the same query through the ORM cost more
    CPU than the round trip itself. The mute test is RestrictionQuerySet.active() for a room or site-wide mute.
    """
    rows = list(Room.objects.raw(_ROOM_SWITCHES_SQL(), [author_key, Restriction.Kind.MUTE.value, now, room.pk]))
    if not rows:
        raise Room.DoesNotExist
    current = rows[0]
    current.has_meeting, current.muted = bool(current.has_meeting), bool(current.muted)
    return current


@functools.cache
def _ROOM_SWITCHES_SQL() -> str:  # built once, from the models' own table names
    room, meeting, restriction = (m._meta.db_table for m in (Room, Meeting, Restriction))
    return (
        "SELECT r.id, r.locked, r.slow_mode_seconds, r.sharing_open, r.floor_starts_at, r.hold_imminent,"  # noqa: S608  # nosec B608: table names from the models
        f" EXISTS (SELECT 1 FROM {meeting} m WHERE m.room_id = r.id) AS has_meeting,"
        f" EXISTS (SELECT 1 FROM {restriction} x WHERE x.author_key = %s AND x.kind = %s"
        "   AND (x.room_id = r.id OR x.room_id IS NULL)"
        "   AND x.lifted_at IS NULL AND (x.until IS NULL OR x.until > %s)) AS muted"
        f" FROM {room} r WHERE r.id = %s"
    )


def _lazy(compute: Callable[[], bool]) -> Callable[[], bool]:
    answer: list[bool] = []

    def get() -> bool:
        if not answer:
            answer.append(compute())
        return answer[0]

    return get


@transaction.atomic
def do_post_message(*, room: Room, participant: Participant, body: str, client_id: uuid.UUID) -> PostResult:
    """Store a message with the room's next number, then (after commit) broadcast it."""
    assessment = moderation.assess(body)  # before the room row is locked: scanning is the slow part
    seq = _next_seq(room.pk)
    message = Message.objects.create(
        room=room,
        seq=seq,
        author_key=participant.author_key,
        handle=participant.handle,
        body=body,
        client_id=client_id,
        state=moderation.initial_state(room, assessment),
    )
    text, own = encoded_pair(message)
    broadcast.publish_room_frame_on_commit(
        slug=room.slug, seq=seq, text=text, own=own, author_key=participant.author_key
    )
    if assessment.level.value != "none":  # most messages: no flag, and no savepoint either
        moderation.do_handle_assessment(message=message, participant=participant, assessment=assessment)
    return PostResult(message=message, created=True)


def _next_seq(room_id: int) -> int:
    """Take the room's next message number; the row stays locked until commit, so numbers follow commits."""
    table = connection.ops.quote_name(Room._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET last_seq = last_seq + 1 WHERE id = %s RETURNING last_seq", [room_id])  # noqa: S608  # nosec B608: table name from the model
        return int(cursor.fetchone()[0])


def own_message_frame(message: Message) -> dict:
    """Return the author's copy of a stored message (with their client_id)."""
    return message_frame(message, own=True)


@dataclass(frozen=True, slots=True)
class JoinResult:
    """Everything a socket needs to enter a room, or the refusal."""

    room: Room | None
    participant: Participant | None
    close_code: int | None
    reason: str
    welcome: dict | None = None
    last_id: int = 0
    opens_at: datetime | None = None
    capacity: int | None = None  # the meeting's limit on people, if it has one
    exempt_from_capacity: bool = False  # staff and the room's chairs always get in


def room_is_full(*, join: JoinResult, people_here: set[str], author: str) -> bool:
    """Whether a meeting with a capacity has no seat for this person (someone already in it always has one)."""
    if not join.capacity or join.exempt_from_capacity or author in people_here:
        return False
    return len(people_here) >= join.capacity


def join_room(*, slug: str, user: object, session: object, resume_after: int | None) -> JoinResult:
    """Decide whether this socket may join `slug`, and build its welcome frame."""
    from accounts.services import participant_for
    from rooms.services import check_room_access

    room = Room.objects.filter(slug=slug).first()
    if room is None:
        return JoinResult(None, None, 4404, "There is no such meeting.")
    participant = participant_for(user=user, session=session)  # type: ignore[arg-type]
    decision = check_room_access(room, participant)
    if not decision.allowed:
        return JoinResult(room, participant, decision.close_code, decision.reason, opens_at=decision.opens_at)
    assert participant is not None
    if participant.guest_id is not None:  # a guest in a meeting is not idle: keep their seat and handle
        GuestPass.objects.filter(pk=participant.guest_id).update(last_seen_at=timezone.now())
    from chat.selectors import history_frames

    head = Room.objects.values_list("last_seq", flat=True).get(pk=room.pk)
    state = room_state(room)
    history = (
        []
        if resume_after is not None
        else history_frames(room, limit=settings.SAATHI_HISTORY_ON_JOIN, author_key=participant.author_key)
    )
    welcome = {
        "type": "welcome",
        "room": {
            "slug": room.slug,
            "name": room.name,
            "kind": room.programme,
            "access": room.access,
            "format": room.format_text,
            "state": state.phase,
            "closes_at": state.closes_at.isoformat() if state.closes_at else None,
            "retention_hours": room.retention_hours,
            "retention": room.retention_label,
        },
        "you": {
            "handle": participant.handle,
            "role": participant.display_role(chairs_room=chairs_room(room, participant)),
        },
        "history": history,
        "last_id": head,
        "meeting": meeting_status(room, now=timezone.now()),  # the schedule and the floor; see docs/protocol.md
        "queue": queue_handles(room, now=timezone.now()),
    }
    capacity = Meeting.objects.filter(room=room).values_list("capacity", flat=True).first()
    return JoinResult(
        room,
        participant,
        None,
        "",
        welcome=welcome,
        last_id=head,
        capacity=capacity,
        exempt_from_capacity=participant.is_staff_role or chairs_room(room, participant),
    )


ERASED_TEXT = "[removed]"


@transaction.atomic
def do_erase_author_messages(*, author_key: str, pseudonym: str) -> int:
    """Replace everything an author wrote with a placeholder, unlinked from them; peers' screens update."""
    erased = list(Message.objects.filter(author_key=author_key).select_related("room"))
    for message in erased:
        message.body, message.handle, message.author_key = ERASED_TEXT, ERASED_TEXT, pseudonym
        message.save(update_fields=["body", "handle", "author_key"])
        broadcast.publish_room_frame_on_commit(
            slug=message.room.slug,
            seq=None,
            # `erased`: the author deleted their account; screens show "[removed]" and drop their handle.
            text=protocol_encode({"type": "deleted", "id": message.seq, "erased": True}),
        )
    return len(erased)


def purge_expired_messages(*, now: datetime) -> int:
    """Delete every message older than its room's retention window. Idempotent: safe on two workers."""
    deleted = 0
    for room_id, hours in Room.objects.values_list("pk", "retention_hours"):
        cutoff = now - timedelta(hours=hours)
        while True:
            # In batches, so a big room never holds a long lock.
            batch = list(
                Message.objects.filter(room_id=room_id, created_at__lt=cutoff).values_list("pk", flat=True)[:1000]
            )
            if not batch:
                break
            deleted += Message.objects.filter(pk__in=batch).delete()[0]
    return deleted
