"""What the chat does: post a message (stored first, then broadcast), and the checks before it."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
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
from moderation.scanning import Assessment
from moderation.selectors import active_mute
from rooms.models import Meeting, Room
from rooms.services import RoomSwitches, chairs_room, meeting_status, queue_handles, room_state


@dataclass(frozen=True, slots=True)
class PostResult:
    message: Message
    created: bool  # False when this client_id was already stored: the stored copy is returned

    def own_copy_text(self) -> str:
        """The author's copy of the stored message, encoded (sent again to them for a retry)."""
        return protocol_encode(own_message_frame(self.message))


@dataclass(frozen=True, slots=True)
class SendIntent:
    """One `send` frame, as the socket read it: who, where, what, and the client's id for it."""

    room: Room
    participant: Participant
    body: str
    client_id: uuid.UUID


def check_post_message(
    *, room: Room, participant: Participant, body: str, client_id: uuid.UUID, now: datetime | None = None
) -> PostResult:
    """Apply the room's rules to a send, then store it. Raises ProtocolError with a readable reason.

    A retry of a message that is already stored (same client_id) always gets the stored copy back, even
    if the rules would now refuse a new one.
    """
    outcome = post_messages([SendIntent(room, participant, body, client_id)], now=now)[0]
    if isinstance(outcome, ProtocolError):
        raise outcome
    return outcome


def post_messages(sends: Sequence[SendIntent], *, now: datetime | None = None) -> list[PostResult | ProtocolError]:
    """Apply the rules to several sends and store the ones they allow, together: one outcome per send, in order.

    The socket layer hands over every send that arrived while the previous ones were being written (group
    commit), so a busy process pays for its rule query, its transaction and its commit once per batch, not
    once per message. Every send counts toward its author's rate, a refused one too (Redis counts while the
    rules are read); a send the rules refuse hears their reason. Each room's messages are numbered in the
    order they arrived. A refusal is returned as that send's ProtocolError; a database failure raises, and
    then nothing in the batch was stored.

    On PostgreSQL, a batch whose rooms all allowed sending when their rules were last read is written without
    reading them again: its one write statement checks them against the rows it locks, and leaves out every
    send whose room changed or whose author was muted since; those are then checked afresh (`_known_rules`).
    """
    now = now or timezone.now()
    # Redis counts the batch while the database answers (or the scan runs), not one after the other.
    counting = start_send_rate_count(sends)
    switches: dict[tuple[int, str], tuple[RoomSwitches, bool]] = {}
    try:
        known = _known_rules(sends, now=now)
        if known is None:
            switches = _send_switches(sends, now=now)
        else:
            assessments = [moderation.assess(send.body) for send in sends]
    finally:
        within_rate = counting()
    if known is not None and all(assessment.level.value == "none" for assessment in assessments):
        return _post_on_known_rules(sends, within_rate, assessments, known, now=now)
    if known is not None:  # a message for the crisis layer: its batch is written in a transaction, rules read
        return _post_checked(sends, within_rate, _send_switches(sends, now=now), assessments, now=now)
    return _post_checked(sends, within_rate, switches, now=now)


def _post_checked(
    sends: Sequence[SendIntent],
    within_rate: list[bool],
    switches: dict[tuple[int, str], tuple[RoomSwitches, bool]],
    assessments: Sequence[Assessment] | None = None,
    *,
    now: datetime,
) -> list[PostResult | ProtocolError]:
    """`post_messages` with the rules just read (`switches`) and the rate already counted (`within_rate`);
    `assessments`, one per send, when the batch was scanned already (each message is scanned once)."""
    accepting: dict[int, bool] = {}
    outcomes: list[PostResult | ProtocolError | None] = [None] * len(sends)
    accepted: list[tuple[int, Assessment]] = []
    for index, send in enumerate(sends):
        if (send.room.pk, send.participant.author_key) not in switches:
            outcomes[index] = ProtocolError(ErrorCode.NOT_FOUND, "This meeting no longer exists.", str(send.client_id))
            continue
        current, muted = switches[(send.room.pk, send.participant.author_key)]
        if current.pk not in accepting:  # the schedule is read once per room per batch
            accepting[current.pk] = room_state(current, now=now).accepts_messages
        refusal = _refusal(send, current=current, muted=muted, accepts_messages=accepting[current.pk], now=now)
        if refusal is not None:
            outcomes[index] = refusal
        elif not within_rate[index]:
            outcomes[index] = rate_limited(send)
        else:
            # Scanned before any row is locked, unless it was already.
            accepted.append((index, assessments[index] if assessments is not None else moderation.assess(send.body)))
    _give_retries_their_copies(sends, outcomes)
    if accepted:
        rooms = {key[0]: current for key, (current, _) in switches.items()}
        for (index, _), result in zip(accepted, _store(sends, accepted, rooms, now=now), strict=True):
            outcomes[index] = result
    assert all(outcome is not None for outcome in outcomes)  # every send was refused, matched or stored
    return outcomes  # type: ignore[return-value]


def _give_retries_their_copies(sends: Sequence[SendIntent], outcomes: list[PostResult | ProtocolError | None]) -> None:
    """A refused retry of a message that is already stored gets its stored copy instead, whatever the rules."""
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, ProtocolError):
            stored = _stored_copy(sends[index].room, sends[index].participant, sends[index].client_id)
            if stored is not None:
                outcomes[index] = PostResult(message=stored, created=False)


# Each room's switches as last read by a batch in this process. Only a shortcut: a batch that uses them has
# its write statement compare them with the room's row, so a stale copy costs a second look, never a wrong
# answer. Bounded by the number of rooms; cleared if that ever grows past reason.
_KNOWN_SWITCHES: dict[int, RoomSwitches] = {}
_KNOWN_SWITCHES_LIMIT = 10_000


def _known_rules(sends: Sequence[SendIntent], *, now: datetime) -> dict[int, RoomSwitches] | None:
    """The last-read switches of every room in the batch, if by them each room takes every send now (not
    locked, no slow mode, sharing open); None when the rules must be read first (or this isn't PostgreSQL)."""
    if connection.vendor != "postgresql":
        return None
    known: dict[int, RoomSwitches] = {}
    for send in sends:
        room_id = send.room.pk
        if room_id in known:
            continue
        current = _KNOWN_SWITCHES.get(room_id)
        if current is None or current.locked or current.slow_mode_seconds:
            return None
        if not room_state(current, now=now).accepts_messages:  # the schedule, at `now`, as the full check does
            return None
        known[room_id] = current
    return known


def _post_on_known_rules(
    sends: Sequence[SendIntent],
    within_rate: list[bool],
    assessments: list[Assessment],
    known: dict[int, RoomSwitches],
    *,
    now: datetime,
) -> list[PostResult | ProtocolError]:
    """Write the sends within their rate in one statement that checks `known` and the authors' mutes; the
    sends it leaves out (their room changed, or was deleted, or their author was muted) are checked afresh."""
    outcomes: list[PostResult | ProtocolError | None] = [None] * len(sends)
    accepted = [(index, assessments[index]) for index in range(len(sends)) if within_rate[index]]
    # A send over its rate is told the rules' reason first if they refuse it too (a muted member hears
    # "muted", not "slow down"), so it goes the careful way, with the ones the statement leaves out.
    again = [index for index in range(len(sends)) if not within_rate[index]]
    if accepted:
        try:
            with _own_transaction_or_savepoint():
                written = _store_in_one_statement(sends, accepted, known, now=now, checks_rooms=True)
        except IntegrityError:  # a retry of a stored message, or one client_id twice: the careful way, rules read
            return _post_checked(sends, within_rate, _send_switches(sends, now=now), assessments, now=now)
        again += [index for (index, _), result in zip(accepted, written, strict=True) if result is None]
        for (index, _), result in zip(accepted, written, strict=True):
            outcomes[index] = result
    if again:  # counted already: checked against the rules as they are now, and stored if they allow it
        again.sort()
        rechecked = [sends[index] for index in again]
        results = _post_checked(
            rechecked,
            [within_rate[index] for index in again],
            _send_switches(rechecked, now=now),
            [assessments[index] for index in again],
            now=now,
        )
        for index, result in zip(again, results, strict=True):
            outcomes[index] = result
    assert all(outcome is not None for outcome in outcomes)  # every send was refused, matched or stored
    return outcomes  # type: ignore[return-value]


def within_send_rate(sends: Sequence[SendIntent]) -> list[bool]:
    """Count each send against its author's per-room rate (SAATHI_SEND_RATE), all in one Redis call."""
    return start_send_rate_count(sends)()


def start_send_rate_count(sends: Sequence[SendIntent]) -> Callable[[], list[bool]]:
    """`within_send_rate`, sent to Redis now; call the returned function (once, always) for the answer."""
    return ratelimit.start_hit_many(
        settings.SAATHI_SEND_RATE, [("send", str(send.room.pk), send.participant.author_key) for send in sends]
    )


def rate_limited(send: SendIntent) -> ProtocolError:
    """The refusal a send over its author's rate gets (retryable, naming the send's client_id)."""
    return ProtocolError(
        ErrorCode.RATE_LIMITED, "You're sending quickly. Take a breath and try again shortly.", str(send.client_id)
    )


def _stored_copy(room: Room, participant: Participant, client_id: uuid.UUID) -> Message | None:
    return Message.objects.filter(room=room, author_key=participant.author_key, client_id=client_id).first()


def _refusal(
    send: SendIntent, *, current: RoomSwitches, muted: bool, accepts_messages: bool, now: datetime
) -> ProtocolError | None:
    """Why the room's state, a mute or slow mode refuses this send, or None (the rate limit is per batch).

    Whether the sender runs the room is only asked when something would refuse them.
    """
    room, participant, cid = send.room, send.participant, str(send.client_id)
    runs_room = _lazy(lambda: participant.is_staff_role or chairs_room(room, participant))
    if not accepts_messages and not runs_room():
        return ProtocolError(ErrorCode.NOT_ALLOWED, "The meeting isn't open for sharing right now.", cid)
    if current.locked and not runs_room():
        return ProtocolError(ErrorCode.LOCKED, "The room is locked by the chair for now.", cid)
    if muted and not runs_room():
        mute = active_mute(author_key=participant.author_key, room=room, now=now)
        until = f" until {mute.until:%H:%M} UTC" if mute is not None and mute.until else ""
        return ProtocolError(ErrorCode.MUTED, f"You are muted in this room{until}.", cid)
    slow = current.slow_mode_seconds
    if slow and not runs_room() and not ratelimit.hit(f"1/{slow}second", "slow", str(room.pk), participant.author_key):
        return ProtocolError(ErrorCode.RATE_LIMITED, f"Slow mode: one message every {slow} seconds.", cid)
    return None


_SWITCH_FIELDS = (
    "id",
    "locked",
    "slow_mode_seconds",
    "sharing_open",
    "floor_starts_at",
    "hold_imminent",
)  # RoomSwitches' fields, in order ("id" is its pk)


def _send_switches(sends: Sequence[SendIntent], *, now: datetime) -> dict[tuple[int, str], tuple[RoomSwitches, bool]]:
    """Each (room, author) pair's room switches (with whether the room has a schedule), and whether the author
    is muted there (a room or site-wide mute), in one statement for the whole batch.

    Written as SQL because it runs for every batch of messages: the ORM's query building cost more CPU than
    the round trip itself. The mute test is RestrictionQuerySet.active().
    """
    pairs = list(dict.fromkeys((send.room.pk, send.participant.author_key) for send in sends))
    # The mute test's two values come first: its subquery precedes the FROM clause in the statement.
    params: list[object] = [Restriction.Kind.MUTE.value, now]
    if connection.vendor == "postgresql":
        # The pairs as one JSON parameter: one statement text for every batch size (prepared once), and one
        # value to adapt instead of two per pair.
        params.append(json.dumps([{"room_id": room_id, "author_key": key} for room_id, key in pairs]))
        sql = _SEND_SWITCHES_SQL(0, connection.vendor)
    else:
        params += [value for pair in pairs for value in pair]
        sql = _SEND_SWITCHES_SQL(len(pairs), connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    rooms: dict[int, RoomSwitches] = {}
    found: dict[tuple[int, str], tuple[RoomSwitches, bool]] = {}
    convert = _room_field_converters(connection.vendor)
    for row in rows:
        *room_values, has_meeting, author_key, muted = row
        room_id = room_values[0]
        if room_id not in rooms:
            rooms[room_id] = RoomSwitches(
                *(to_python(value) for to_python, value in zip(convert, room_values, strict=True)),
                has_meeting=bool(has_meeting),
            )
        found[(room_id, author_key)] = (rooms[room_id], bool(muted))
    if len(_KNOWN_SWITCHES) > _KNOWN_SWITCHES_LIMIT:
        _KNOWN_SWITCHES.clear()
    _KNOWN_SWITCHES.update(rooms)
    for room_id, _ in pairs:
        if room_id not in rooms:  # deleted
            _KNOWN_SWITCHES.pop(room_id, None)
    return found  # a room deleted under an open socket has no entry


@functools.cache
def _room_field_converters(vendor: str) -> list[Callable[[object], object]]:
    """What the ORM would do to each switch column's raw value (SQLite hands back naive datetimes, 0/1).

    Worked out once per database kind (`vendor`), not per batch: it is the same for every connection. A
    column with nothing to convert (most of them, on PostgreSQL) is passed through as it is."""
    converters: list[Callable[[object], object]] = []
    for name in _SWITCH_FIELDS:
        column = Room._meta.get_field(name).get_col(Room._meta.db_table)
        steps = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        converters.append(functools.partial(_apply_converters, steps, column) if steps else _unchanged)
    return converters


def _unchanged(value: object) -> object:
    return value


def _apply_converters(steps: list[Callable[..., object]], column: object, value: object) -> object:
    for step in steps:
        value = step(value, column, connection)
    return value


@functools.cache
def _SEND_SWITCHES_SQL(pair_count: int, vendor: str) -> str:  # built once per batch size, from the models' tables
    room, meeting, restriction = (m._meta.db_table for m in (Room, Meeting, Restriction))
    # The batch's (room, author) pairs as a derived table: from one JSON array on PostgreSQL (any batch size),
    # from a row of placeholders per pair elsewhere.
    if vendor == "postgresql":
        pairs = "SELECT * FROM jsonb_to_recordset(%s::jsonb) AS p(room_id bigint, author_key varchar(32))"
    else:
        pairs = " UNION ALL ".join(
            ["SELECT CAST(%s AS BIGINT) AS room_id, CAST(%s AS VARCHAR(32)) AS author_key"] * pair_count
        )
    columns = ", ".join(f"r.{name}" for name in _SWITCH_FIELDS)
    return (
        f"SELECT {columns},"  # noqa: S608  # nosec B608: table and column names from the models
        f" EXISTS (SELECT 1 FROM {meeting} m WHERE m.room_id = r.id) AS has_meeting,"
        " a.author_key,"
        f" EXISTS (SELECT 1 FROM {restriction} x WHERE x.author_key = a.author_key AND x.kind = %s"
        "   AND (x.room_id = r.id OR x.room_id IS NULL)"
        "   AND x.lifted_at IS NULL AND (x.until IS NULL OR x.until > %s)) AS muted"
        f" FROM ({pairs}) a JOIN {room} r ON r.id = a.room_id"
    )


def _lazy(compute: Callable[[], bool]) -> Callable[[], bool]:
    answer: list[bool] = []

    def get() -> bool:
        if not answer:
            answer.append(compute())
        return answer[0]

    return get


def _store(
    sends: Sequence[SendIntent],
    accepted: list[tuple[int, Assessment]],
    rooms: dict[int, RoomSwitches],
    *,
    now: datetime,
) -> list[PostResult | ProtocolError]:
    """Store the accepted sends together; if one was already stored, one at a time instead."""
    try:
        if connection.vendor == "postgresql" and all(assessment.level.value == "none" for _, assessment in accepted):
            # The usual batch: nothing for the crisis layer, so numbering and inserting is the whole write, and
            # one statement does it.
            with _own_transaction_or_savepoint():
                written = _store_in_one_statement(sends, accepted, rooms, now=now)
            return [_stored_or_gone(sends[index], result) for (index, _), result in zip(accepted, written, strict=True)]
        if connection.features.can_return_rows_from_bulk_insert:
            # A flag is written in the same transaction as its message: never a stored crisis without its flag.
            with transaction.atomic():
                return _store_together(sends, accepted, rooms)
    except IntegrityError:  # a retry of a stored message, or one client_id twice in this batch
        pass
    return [_store_one(sends[index]) for index, _ in accepted]


def _own_transaction_or_savepoint() -> AbstractContextManager[object]:
    """Around one write statement that may fail: alone it is its own transaction (autocommit, no BEGIN to pay
    for); inside the caller's transaction, a savepoint, so its IntegrityError leaves that transaction usable."""
    return transaction.atomic() if connection.in_atomic_block else nullcontext()


def _stored_or_gone(send: SendIntent, result: PostResult | None) -> PostResult | ProtocolError:
    """A send the write left out although its rules were just read: its room was deleted in between."""
    if result is None:
        return ProtocolError(ErrorCode.NOT_FOUND, "This meeting no longer exists.", str(send.client_id))
    return result


def _store_in_one_statement(
    sends: Sequence[SendIntent],
    accepted: list[tuple[int, Assessment]],
    rooms: dict[int, RoomSwitches],
    *,
    now: datetime,
    checks_rooms: bool = False,
) -> list[PostResult | None]:
    """PostgreSQL: take each room's next numbers and insert the batch's messages in a single statement.

    Written as SQL because this runs for every batch: a round trip each for BEGIN, the numbering UPDATE, the
    INSERT and COMMIT, and the ORM's per-row preparation, were most of a batch's cost (`python -m
    bench.bench_store`). The rooms are locked in id order before any is changed, as `_advance_seqs` does, so
    two processes' batches never wait on each other in a cycle.

    With `checks_rooms` (`rooms` being each room's switches as this process last read them), the statement
    also writes nothing to a room whose row no longer has those switches, nor from an author muted there now. None stands for a
    send that was not written: its room was left out that way, or deleted since its rules were read.
    """
    messages = _new_messages(sends, accepted, rooms, created_at=now)
    # The batch as one JSON parameter: psycopg adapts a list element by element in Python; json.dumps is C.
    batch = json.dumps(
        [
            {
                "position": position,
                "room_id": message.room_id,
                "author_key": message.author_key,
                "handle": message.handle,
                "body": message.body,
                "client_id": str(message.client_id),
                "state": message.state,
            }
            for position, message in enumerate(messages)
        ]
    )
    if not checks_rooms:
        params: list[object] = [batch, now]
    else:
        expected = json.dumps(
            [
                {
                    "room_id": switches.pk,
                    "locked": switches.locked,
                    "slow_mode_seconds": switches.slow_mode_seconds,
                    "sharing_open": switches.sharing_open,
                    "floor_starts_at": switches.floor_starts_at.isoformat() if switches.floor_starts_at else None,
                    "hold_imminent": switches.hold_imminent,
                    "has_meeting": switches.has_meeting,
                }
                for switches in rooms.values()
            ]
        )
        params = [batch, Restriction.Kind.MUTE.value, now, expected, now]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_BATCH_SQL(checks_rooms), params)
        stored = {position: (pk, seq) for position, pk, seq in cursor.fetchall()}
    results: list[PostResult | None] = []
    for position, ((index, assessment), message) in enumerate(zip(accepted, messages, strict=True)):
        if position not in stored:
            results.append(None)
            continue
        message.pk, message.seq = stored[position]
        _announce(message, sends[index].participant, assessment)
        results.append(PostResult(message=message, created=True))
    return results


@functools.cache
def _INSERT_BATCH_SQL(checks_rooms: bool) -> str:  # from the models' own table names
    room, message, meeting, restriction = (m._meta.db_table for m in (Room, Message, Meeting, Restriction))
    given = (
        "SELECT * FROM jsonb_to_recordset(%s::jsonb) AS m(position int, room_id bigint, author_key varchar,"
        " handle varchar, body text, client_id uuid, state varchar)"
    )
    expected = checked = ""
    if checks_rooms:
        # An author muted since (room or site-wide: RestrictionQuerySet.active(), as in _SEND_SWITCHES_SQL)...
        given += (
            f" WHERE NOT EXISTS (SELECT 1 FROM {restriction} x WHERE x.author_key = m.author_key AND x.kind = %s"  # noqa: S608  # nosec B608: table names from the models
            "   AND (x.room_id = m.room_id OR x.room_id IS NULL)"
            "   AND x.lifted_at IS NULL AND (x.until IS NULL OR x.until > %s))"
        )
        # ... and a room whose switches changed (compared on the row the UPDATE locks) are not written.
        expected = (
            " JOIN jsonb_to_recordset(%s::jsonb) AS e(room_id bigint, locked boolean, slow_mode_seconds int,"
            "   sharing_open boolean, floor_starts_at timestamptz, hold_imminent boolean, has_meeting boolean)"
            "   ON e.room_id = counts.room_id"
        )
        checked = (
            " AND r.locked = e.locked AND r.slow_mode_seconds = e.slow_mode_seconds"  # noqa: S608
            " AND r.sharing_open = e.sharing_open AND r.floor_starts_at IS NOT DISTINCT FROM e.floor_starts_at"
            " AND r.hold_imminent = e.hold_imminent"
            f" AND EXISTS (SELECT 1 FROM {meeting} mt WHERE mt.room_id = r.id) = e.has_meeting"  # nosec B608: table names from the models
        )
    return (
        "WITH batch AS (SELECT g.*, row_number() OVER (PARTITION BY g.room_id ORDER BY g.position) AS place"  # noqa: S608  # nosec B608: table names from the models
        f"   FROM ({given}) g),"
        " counts AS (SELECT room_id, count(*) AS n FROM batch GROUP BY room_id),"
        f" numbered AS (UPDATE {room} r SET last_seq = r.last_seq + counts.n FROM counts{expected}"
        f"   WHERE r.id = counts.room_id{checked}"
        f"   AND r.id IN (SELECT id FROM {room} WHERE id IN (SELECT room_id FROM counts) ORDER BY id FOR UPDATE)"
        "   RETURNING r.id, r.last_seq - counts.n AS before),"
        f" inserted AS (INSERT INTO {message} (room_id, seq, author_key, handle, body, client_id, state, created_at)"
        "   SELECT b.room_id, n.before + b.place, b.author_key, b.handle, b.body, b.client_id, b.state, %s"
        "   FROM batch b JOIN numbered n ON n.id = b.room_id ORDER BY b.position"
        "   RETURNING id, room_id, seq)"
        " SELECT b.position, i.id, i.seq FROM inserted i JOIN numbered n ON n.id = i.room_id"
        "   JOIN batch b ON b.room_id = i.room_id AND b.place = i.seq - n.before"
    )


def _store_together(
    sends: Sequence[SendIntent], accepted: list[tuple[int, Assessment]], rooms: dict[int, RoomSwitches]
) -> list[PostResult]:
    by_room: dict[int, list[int]] = {}
    for position, (index, _) in enumerate(accepted):
        by_room.setdefault(sends[index].room.pk, []).append(position)
    last_seqs = _advance_seqs({room_id: len(positions) for room_id, positions in by_room.items()})
    seqs = [0] * len(accepted)
    for room_id, positions in by_room.items():  # each room's numbers in arrival order
        first = last_seqs[room_id] - len(positions) + 1
        for offset, position in enumerate(positions):
            seqs[position] = first + offset
    messages = _new_messages(sends, accepted, rooms)
    for message, seq in zip(messages, seqs, strict=True):
        message.seq = seq
    messages = Message.objects.bulk_create(messages)
    for (index, assessment), message in zip(accepted, messages, strict=True):
        _announce(message, sends[index].participant, assessment)
    return [PostResult(message=message, created=True) for message in messages]


def _new_messages(
    sends: Sequence[SendIntent],
    accepted: list[tuple[int, Assessment]],
    rooms: dict[int, RoomSwitches],
    **fields: object,
) -> list[Message]:
    """The accepted sends as unsaved messages (no number yet), in the state the room's rules give them."""
    return [
        Message(
            room=sends[index].room,
            author_key=sends[index].participant.author_key,
            handle=sends[index].participant.handle,
            body=sends[index].body,
            client_id=sends[index].client_id,
            state=moderation.initial_state(rooms[sends[index].room.pk], assessment),
            **fields,
        )
        for index, assessment in accepted
    ]


def _store_one(send: SendIntent) -> PostResult:
    try:
        return do_post_message(room=send.room, participant=send.participant, body=send.body, client_id=send.client_id)
    except IntegrityError:  # already stored (a retry, or a race on another socket): return the stored copy
        stored = _stored_copy(send.room, send.participant, send.client_id)
        if stored is None:
            raise
        return PostResult(message=stored, created=False)


@transaction.atomic
def do_post_message(*, room: Room, participant: Participant, body: str, client_id: uuid.UUID) -> PostResult:
    """Store a message with the room's next number, then (after commit) broadcast it."""
    assessment = moderation.assess(body)  # before the room row is locked: scanning is the slow part
    seq = _advance_seqs({room.pk: 1})[room.pk]
    message = Message.objects.create(
        room=room,
        seq=seq,
        author_key=participant.author_key,
        handle=participant.handle,
        body=body,
        client_id=client_id,
        state=moderation.initial_state(room, assessment),
    )
    _announce(message, participant, assessment)
    return PostResult(message=message, created=True)


def _announce(message: Message, participant: Participant, assessment: Assessment) -> None:
    """After commit: the frame to the room (peers' and the author's copies), and a flag if the scan raised one."""
    text, own = encoded_pair(message)
    broadcast.publish_room_frame_on_commit(
        slug=message.room.slug, seq=message.seq, text=text, own=own, author_key=participant.author_key
    )
    if assessment.level.value != "none":  # most messages: no flag, and no savepoint either
        moderation.do_handle_assessment(message=message, participant=participant, assessment=assessment)


def _advance_seqs(counts: dict[int, int]) -> dict[int, int]:
    """Take `count` more message numbers in each room; return each room's last. One statement for any number of
    rooms; the rows stay locked until commit, so numbers follow commits."""
    table = connection.ops.quote_name(Room._meta.db_table)
    room_ids = sorted(counts)
    listed = ", ".join(["%s"] * len(room_ids))
    with connection.cursor() as cursor:
        if len(room_ids) > 1 and connection.features.has_select_for_update:
            # Lock the rooms in id order first, so two processes' batches can never wait on each other in a
            # cycle (an UPDATE alone locks in whatever order its plan visits the rows).
            cursor.execute(f"SELECT id FROM {table} WHERE id IN ({listed}) ORDER BY id FOR UPDATE", room_ids)  # noqa: S608  # nosec B608: table name from the model
        cases = " ".join(["WHEN %s THEN %s"] * len(room_ids))
        cursor.execute(
            f"UPDATE {table} SET last_seq = last_seq + CASE id {cases} END WHERE id IN ({listed}) RETURNING id, last_seq",  # noqa: S608  # nosec B608: table name from the model
            [value for room_id in room_ids for value in (room_id, counts[room_id])] + room_ids,
        )
        return {int(room_id): int(last) for room_id, last in cursor.fetchall()}


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
    from rooms.services import check_room_access, read_schedule

    room = Room.objects.filter(slug=slug).first()
    if room is None:
        return JoinResult(None, None, 4404, "There is no such meeting.")
    participant = participant_for(user=user, session=session)  # type: ignore[arg-type]
    # Every answer below is about one instant and one reading of the schedule (each used to read it again):
    # at a meeting's start the whole room joins at once.
    now = timezone.now()
    schedule = read_schedule(room)
    decision = check_room_access(room, participant, now=now, schedule=schedule)
    if not decision.allowed:
        return JoinResult(room, participant, decision.close_code, decision.reason, opens_at=decision.opens_at)
    assert participant is not None
    if participant.guest_id is not None:  # a guest in a meeting is not idle: keep their seat and handle
        GuestPass.objects.filter(pk=participant.guest_id).update(last_seen_at=timezone.now())
    from chat.selectors import history_frames

    head = Room.objects.values_list("last_seq", flat=True).get(pk=room.pk)
    state = room_state(room, now=now, schedule=schedule)
    chair = chairs_room(room, participant)
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
            "role": participant.display_role(chairs_room=chair),
        },
        "history": history,
        "last_id": head,
        "meeting": meeting_status(room, now=now, schedule=schedule),  # the schedule and the floor; docs/protocol.md
        "queue": queue_handles(room, now=now, schedule=schedule),
    }
    capacity = schedule.meeting.capacity if schedule.meeting is not None else None
    return JoinResult(
        room,
        participant,
        None,
        "",
        welcome=welcome,
        last_id=head,
        capacity=capacity,
        exempt_from_capacity=participant.is_staff_role or chair,
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
