"""The only module that touches the channel layer: fan-out of room frames to every member, fast.

Design (docs/architecture.md has the long version):
- Each daphne process runs one `Hub`. Sockets register with it; they do not get channel-layer channels.
- A message is serialised once, at commit, and published once per message to the room's group; each
  process subscribes once per room, so Redis does one round trip per message per process, not per member.
- The hub writes the same encoded text to every local member in one loop: no per-member task, no
  per-member json.dumps, no consumer dispatch.
- The database is the source of truth. Messages are numbered 1, 2, 3... per room; a hub that sees a gap
  (a lost or reordered publish, a Redis restart) waits briefly, then back-fills from the database, so
  nothing is ever lost silently, and every member gets one room's messages in the same order.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from chat import protocol, sockets
from chat.transport import encode_text_frame

logger = logging.getLogger("saathi.broadcast")


CONTROL_GROUP = "saathi.control"
MODERATION_GROUP = "saathi.moderation"  # the staff sockets on /ws/moderation/ (ordinary Channels consumers)
SEEN_EVENTS_KEPT = 2048  # event ids remembered per process, so a local fast-path event isn't written twice
GAP_WAIT_SECONDS = 0.25  # how long a hub waits for an out-of-order message before reading the database
TICK_SECONDS = 2.0  # roster heartbeat, group refresh and the database safety sweep
ROSTER_TTL_SECONDS = 12.0
PRESENCE_DEBOUNCE_SECONDS = 0.3
BACKFILL_BATCH = 200
# Member back-fills reading the database at once, per process. Every read goes through the process's one
# database thread; when a burst pauses many members at once, their back-fills must not queue ahead of
# handshakes and sends by the hundred. Members who need the same rows share one read.
BACKFILL_READERS = 2
# A member whose socket holds more than this unread is paused (and later back-filled from the database)
# instead of letting the server buffer without limit; delivery resumes once it is under the low mark.
SLOW_MEMBER_BYTES = 1024 * 1024
SLOW_MEMBER_RESUME_BYTES = 64 * 1024


def room_group(slug: str) -> str:
    """Return the channel-layer group of a room: the one helper, so a typo can't cross rooms."""
    return f"room.{slug}"


def author_tag(author_key: str) -> str:
    """Return an opaque tag for an author, so layer events carry no account ids."""
    return hashlib.blake2b(author_key.encode(), key=settings.SECRET_KEY.encode()[:64], digest_size=12).hexdigest()


# --- Publishing (called from services, inside their transaction) --------------------------------------


def publish_room_frame_on_commit(
    *, slug: str, seq: int | None, text: str | None, own: str | None = None, author_key: str | None = None
) -> None:
    """After commit, send an encoded frame to every member of the room, on every process."""
    event: dict[str, Any] = {
        "type": protocol.EVENT_ROOM_FRAME,
        "room": slug,
        "seq": seq,
        "text": text,
        "own": own,
        "author": author_tag(author_key) if author_key else None,
    }
    transaction.on_commit(lambda: _publish(room_group(slug), event))


def publish_control_on_commit(
    *,
    author_key: str,
    action: str,
    code: int = int(protocol.CloseCode.NOT_ALLOWED),
    rooms: list[str] | None = None,
) -> None:
    """After commit, tell every process to act on this person's open sockets (close them, refresh roles).

    With `rooms`, only their sockets in those rooms are affected (a removal from one room, a fellowship ban).
    """
    event = {
        "type": protocol.EVENT_PARTICIPANT_CONTROL,
        "author": author_tag(author_key),
        "action": action,
        "code": code,
        "rooms": rooms,
    }
    transaction.on_commit(lambda: _publish(CONTROL_GROUP, event))


def publish_to_author_on_commit(*, author_key: str, frame: dict[str, Any], room: str | None = None) -> None:
    """After commit, send a frame to this one person's open sockets (in `room`, or in every room).

    For what only they should see: the `support` frame after a crisis message, a mute notice.
    """
    event = {
        "type": protocol.EVENT_PARTICIPANT_FRAME,
        "author": author_tag(author_key),
        "room": room,
        "text": protocol.encode(frame),
    }
    transaction.on_commit(lambda: _publish(CONTROL_GROUP, event))


def moderation_group() -> str:
    return MODERATION_GROUP


def control_group() -> str:
    """Return the group of per-person control events (close, refresh), for consumers outside the Hub."""
    return CONTROL_GROUP


def publish_moderation_on_commit(*, frame: dict[str, Any], audience: str, paged: list[str] | None = None) -> None:
    """After commit, send a frame to the staff on /ws/moderation/ who hold `audience` (a permission).

    `paged` lists the author keys being paged for it; they travel as opaque tags, and each socket is only
    told whether it is one of them.
    """
    event = {
        "type": protocol.EVENT_MODERATION_FRAME,
        "frame": frame,
        "audience": audience,
        "paged": [author_tag(key) for key in paged or ()],
    }
    transaction.on_commit(lambda: _publish(MODERATION_GROUP, event))


# In the send writer (chat/writer.py) there is no hub and no loop: what it publishes is collected here, and the
# server that asked for the batch publishes it (`publish_collected`).
_collected: contextvars.ContextVar[list[tuple[str, dict[str, Any]]] | None] = contextvars.ContextVar(
    "saathi_collected_events", default=None
)


@contextlib.contextmanager
def collecting(events: list[tuple[str, dict[str, Any]]]) -> Iterator[None]:
    """Within the block, publishing appends (group, event) to `events` instead of sending it."""
    token = _collected.set(events)
    try:
        yield
    finally:
        _collected.reset(token)


def publish_collected(events: list[tuple[str, dict[str, Any]]]) -> None:
    """Publish events a send writer collected, in order, as if this process had committed them."""
    for group, event in events:
        _publish(group, event)


def _publish(group: str, event: dict[str, Any]) -> None:
    event.setdefault("eid", uuid.uuid4().hex)
    collected = _collected.get()
    if collected is not None:
        collected.append((group, event))
        return
    hub = Hub.current
    if hub is not None and hub.loop is not None and not hub.loop.is_closed():
        # This process's members don't wait for Redis; the database thread never waits on Redis either.
        hub.outbox.put(group, event, deliver_here=group != MODERATION_GROUP)
        return
    layer = get_channel_layer()
    if layer is None:
        return
    try:  # a management command or the worker: no server loop here, so publish and wait
        async_to_sync(_safe_group_send_many)(layer, [(group, event, False)])
    except RuntimeError:  # no usable loop (a management command at shutdown): the database still has it
        logger.warning("broadcast skipped: no event loop; members will back-fill from the database")


class _Outbox:
    """What this process publishes, handed to its event loop in order, and sent to Redis a batch at a time.

    Commit callbacks run on the database thread, one per message, and a batch of sends commits many at
    once. Rather than a task and a Redis round trip each, they queue here; one drain on the loop delivers
    them to this process's members, then publishes them all in one pipeline (chat/layers.py). One drain
    runs at a time, so events leave in the order they were committed.
    """

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._events: list[tuple[str, dict[str, Any], bool]] = []
        self._lock = threading.Lock()  # put() runs on the database thread, the drain on the loop
        self._draining = False

    def put(self, group: str, event: dict[str, Any], *, deliver_here: bool) -> None:
        with self._lock:
            self._events.append((group, event, deliver_here))
            if self._draining:
                return
            self._draining = True
        assert self.hub.loop is not None
        _run_on_loop(self.hub.loop, self._drain)

    async def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._events:
                    self._draining = False
                    return
                batch, self._events = self._events, []
            for _, event, deliver_here in batch:
                if deliver_here:
                    try:
                        await self.hub.handle_event(event)
                    except Exception:
                        logger.exception("hub could not handle a %s event", event.get("type"))
            layer = get_channel_layer()
            if layer is not None:
                await _safe_group_send_many(layer, batch)


def _run_on_loop(loop: asyncio.AbstractEventLoop, make_coroutine: Callable[[], Any]) -> None:
    """Start a coroutine as a task on `loop`, from its own thread or any other, in a fresh context.

    The fresh context matters: on-commit callbacks run inside asgiref's single-thread executor, whose
    context marks it as busy; a task that inherited it would refuse its own database reads ("would deadlock").
    """
    if _on_loop(loop):
        loop.create_task(make_coroutine(), context=contextvars.Context())
    else:
        loop.call_soon_threadsafe(lambda: loop.create_task(make_coroutine()), context=contextvars.Context())


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


async def _safe_group_send_many(layer: Any, batch: list[tuple[str, dict[str, Any], bool]]) -> None:
    try:
        if hasattr(layer, "group_send_many"):  # ours (chat/layers.py): one pipeline for the batch
            await layer.group_send_many(batch)
        else:  # the in-memory layer of a single-process setup
            for group, event, _ in batch:
                await layer.group_send(group, event)
    except Exception as exc:  # Redis away: the messages are stored; hubs back-fill when it returns
        logger.warning("channel layer publish failed (%s); members will back-fill", type(exc).__name__)


# --- The per-process hub ----------------------------------------------------------------------------------


@dataclass(eq=False)
class Member:
    """One open socket, as the hub sees it."""

    conn_id: str
    room: str
    author: str  # author_tag
    handle: str
    last_id: int
    write: Callable[[str], Awaitable[None]]
    close: Callable[[int], Awaitable[None]]
    backfilling: bool = False
    pending: Callable[[], int] | None = None  # bytes daphne still holds for this socket (chat/transport.py)
    # Writes a ready-made WebSocket frame straight to the socket (chat/transport.py); None: use `write`.
    write_frame: Callable[[bytes], bool] | None = None
    slots: tuple[str, ...] = ()  # socket-cap keys this socket holds (chat/sockets.py), refreshed while it lives
    lagging: bool = False  # stopped reading: live delivery paused, back-filled once it drains

    def congested(self, limit: int) -> bool:
        return self.pending is not None and self.pending() > limit


@dataclass
class _Room:
    slug: str
    room_id: int
    members: dict[str, Member] = field(default_factory=dict)
    next_seq: int | None = None
    pending: dict[int, dict[str, Any]] = field(default_factory=dict)
    gap_task: asyncio.Task[None] | None = None
    remote_rosters: dict[str, tuple[float, list[list[str]]]] = field(default_factory=dict)
    presence_text: str = ""
    presence_task: asyncio.Task[None] | None = None

    @property
    def delivered(self) -> int:
        return (self.next_seq or 1) - 1


class Hub:
    """Fan-out for one process: one channel-layer subscription per room, one write loop per message."""

    current: Hub | None = None

    def __init__(
        self,
        fetch_after: Callable[[int, int, int], Awaitable[list[tuple[int, str | None, str | None, str]]]],
        room_heads: Callable[[list[int]], Awaitable[dict[int, int]]],
    ) -> None:
        self.process_id = uuid.uuid4().hex[:12]
        self.rooms: dict[str, _Room] = {}
        self.by_author: dict[str, set[Member]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.channel: str | None = None
        self._fetch_after = fetch_after
        self._room_heads = room_heads
        self._tasks: list[asyncio.Task[None]] = []
        self._start_lock = asyncio.Lock()
        self.counters = {"gap_backfills": 0, "member_backfills": 0, "layer_errors": 0}
        self._seen_events: dict[str, None] = {}
        self._backfill_readers = asyncio.Semaphore(BACKFILL_READERS)
        self._backfill_reads: dict[tuple[int, int], asyncio.Future[list[tuple[int, str | None, str | None, str]]]] = {}
        self._slots_refreshed = time.monotonic()
        self.outbox = _Outbox(self)

    # -- life cycle --
    @classmethod
    def get(cls) -> Hub:
        if cls.current is None or cls.current.loop is not asyncio.get_running_loop():
            cls.current = Hub(fetch_after=_fetch_after, room_heads=_room_heads)
        return cls.current

    async def ensure_started(self) -> None:
        if self.channel is not None:
            return
        async with self._start_lock:
            if self.channel is not None:
                return
            self.loop = asyncio.get_running_loop()
            layer = get_channel_layer()
            self.channel = await layer.new_channel("hub.") if layer else "local"
            if layer is not None:
                await self._layer_call("group_add", CONTROL_GROUP, self.channel)
                self._tasks.append(asyncio.create_task(self._receive_loop(layer)))
            self._tasks.append(asyncio.create_task(self._tick_loop()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if Hub.current is self:
            Hub.current = None

    # -- membership --
    async def join(self, member: Member, room_id: int) -> None:
        await self.ensure_started()
        room = self.rooms.get(member.room)
        if room is None:
            room = self.rooms[member.room] = _Room(slug=member.room, room_id=room_id)
            await self._layer_call("group_add", room_group(member.room), self.channel)
        self.by_author.setdefault(member.author, set()).add(member)
        room.members[member.conn_id] = member
        if room.next_seq is None:
            room.next_seq = member.last_id + 1
            for seq in sorted(s for s in room.pending if s < room.next_seq):
                room.pending.pop(seq)
            await self._drain(room)
        elif member.last_id < room.delivered:
            self._start_backfill(member)
        # The newcomer hears who is here at once; everyone else hears of them in the next debounced update,
        # so 200 people joining at a meeting's start cost a few room-wide presence frames, not 200 times 200.
        await member.write(self._presence_text(room))
        self._presence_changed(room)

    async def leave(self, member: Member) -> None:
        room = self.rooms.get(member.room)
        members = self.by_author.get(member.author)
        if members is not None:
            members.discard(member)
            if not members:
                del self.by_author[member.author]
        if room is None or room.members.pop(member.conn_id, None) is None:
            return
        if not room.members:
            del self.rooms[member.room]
            if room.gap_task:
                room.gap_task.cancel()
            await self._layer_call("group_discard", room_group(member.room), self.channel)
            await self._publish_roster(room)
        else:
            self._presence_changed(room)

    def local_handles(self, slug: str) -> list[str]:
        room = self.rooms.get(slug)
        return sorted({m.handle for m in room.members.values()}) if room else []

    # -- events --
    def _first_sight(self, event: dict[str, Any]) -> bool:
        """Return False for an event this process already handled (its local copy, then the layer's)."""
        eid = event.get("eid")
        if eid is None:
            return True
        if eid in self._seen_events:
            return False
        self._seen_events[eid] = None
        if len(self._seen_events) > SEEN_EVENTS_KEPT:
            del self._seen_events[next(iter(self._seen_events))]
        return True

    async def handle_event(self, event: dict[str, Any]) -> None:
        if not self._first_sight(event):
            return
        kind = event.get("type")
        if kind == protocol.EVENT_ROOM_FRAME:
            room = self.rooms.get(event.get("room", ""))
            if room is not None:
                await self._on_room_frame(room, event)
        elif kind == protocol.EVENT_ROOM_ROSTER:
            room = self.rooms.get(event.get("room", ""))
            if room is not None and event.get("process") != self.process_id:
                room.remote_rosters[event["process"]] = (
                    time.monotonic() + ROSTER_TTL_SECONDS,
                    event["members"],
                )
                await self._send_presence(room)
        elif kind == protocol.EVENT_PARTICIPANT_CONTROL:
            rooms = event.get("rooms")
            for member in list(self.by_author.get(event.get("author", ""), ())):
                if rooms is None or member.room in rooms:
                    await member.close(int(event.get("code", protocol.CloseCode.NOT_ALLOWED)))
        elif kind == protocol.EVENT_PARTICIPANT_FRAME:
            room, text = event.get("room"), event.get("text")
            for member in list(self.by_author.get(event.get("author", ""), ())):
                if text and (room is None or member.room == room):
                    await member.write(text)

    async def _on_room_frame(self, room: _Room, event: dict[str, Any]) -> None:
        seq = event.get("seq")
        if seq is None:  # presence-free room frames (deleted, notice, queue): no ordering needed
            await self._write_all(room, event, None)
            return
        if room.next_seq is None or seq < room.next_seq:
            if room.next_seq is None:
                room.pending[seq] = event
            return
        room.pending[seq] = event
        await self._drain(room)
        if room.pending and room.gap_task is None:
            room.gap_task = asyncio.create_task(self._fill_gap_later(room))

    async def _drain(self, room: _Room) -> None:
        assert room.next_seq is not None
        while room.next_seq in room.pending:
            event = room.pending.pop(room.next_seq)
            await self._write_all(room, event, room.next_seq)
            room.next_seq += 1

    async def _write_all(self, room: _Room, event: dict[str, Any], seq: int | None) -> None:
        text, own, author = event.get("text"), event.get("own"), event.get("author")
        frames: dict[str, bytes] = {}  # each distinct text becomes WebSocket frame bytes once, for everyone
        for member in list(room.members.values()):
            if member.lagging:
                continue
            if member.congested(SLOW_MEMBER_BYTES):
                self._pause(member)
                continue
            if seq is not None:
                if member.backfilling or seq <= member.last_id:
                    continue
                if seq != member.last_id + 1:
                    self._start_backfill(member)
                    continue
                member.last_id = seq
            out = own if (own is not None and member.author == author) else text
            if out is None:
                continue
            if member.write_frame is not None:
                frame = frames.get(out)
                if frame is None:
                    frame = frames[out] = encode_text_frame(out)
                member.write_frame(frame)  # False: the socket is closing; its disconnect will follow
            else:
                await member.write(out)

    async def _fill_gap_later(self, room: _Room) -> None:
        try:
            await asyncio.sleep(GAP_WAIT_SECONDS)
            while room.pending and room.next_seq is not None:
                first_pending = min(room.pending)
                if first_pending < room.next_seq:  # delivered meanwhile (or skipped as purged): nothing to wait for
                    del room.pending[first_pending]
                    continue
                if first_pending == room.next_seq:
                    await self._drain(room)
                    continue
                target = first_pending - 1
                self.counters["gap_backfills"] += 1
                rows = await self._fetch_after(
                    room.room_id, room.next_seq - 1, min(BACKFILL_BATCH, target - room.next_seq + 1)
                )
                self._skip_missing(room, rows, upto=target)
                self._queue_rows(room, rows)
                await self._drain(room)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("gap back-fill failed (%s); will retry on the next tick", type(exc).__name__)
        finally:
            room.gap_task = None

    @staticmethod
    def _queue_rows(room: _Room, rows: list[tuple[int, str | None, str | None, str]]) -> None:
        """Queue rows read from the database for delivery in order; a row whose live copy was delivered while
        the read was under way is dropped (left in `pending`, below `next_seq`, it would never drain)."""
        for seq, text, own, author in rows:
            if room.next_seq is not None and seq >= room.next_seq:
                room.pending.setdefault(seq, {"text": text, "own": own, "author": author})

    @staticmethod
    def _skip_missing(room: _Room, rows: list[tuple[int, str | None, str | None, str]], *, upto: int) -> None:
        """Move past numbers the database no longer holds (purged after the retention window).

        Numbers are handed out inside the writing transaction, so every number up to a committed one is
        committed too: a number the database doesn't return was stored once and has since been deleted.
        """
        first_present = rows[0][0] if rows else upto + 1
        if room.next_seq is not None and first_present > room.next_seq:
            room.next_seq = first_present

    def _pause(self, member: Member) -> None:
        member.lagging = True
        self.counters["members_paused"] = self.counters.get("members_paused", 0) + 1
        # Sizes and counts only: never what was being sent.
        logger.warning("a member stopped reading (over %d bytes unsent); live delivery paused", SLOW_MEMBER_BYTES)

    async def _resume_drained(self, room: _Room) -> None:
        for member in list(room.members.values()):
            if member.lagging and not member.congested(SLOW_MEMBER_RESUME_BYTES):
                member.lagging = False
                self._start_backfill(member)
                if room.presence_text:
                    await member.write(room.presence_text)

    def _start_backfill(self, member: Member) -> None:
        if member.backfilling or self.loop is None:
            return
        member.backfilling = True
        self.counters["member_backfills"] += 1
        self.loop.create_task(self._backfill_member(member))

    async def _backfill_member(self, member: Member) -> None:
        try:
            room = self.rooms.get(member.room)
            while room is not None and member.conn_id in room.members:
                while member.congested(SLOW_MEMBER_RESUME_BYTES) and member.conn_id in room.members:
                    await asyncio.sleep(0.2)  # let the reader catch up before the next batch
                rows = await self._read_for_backfill(room.room_id, member.last_id)
                for seq, text, own, author in rows:
                    if seq <= member.last_id:
                        continue  # numbers missing before `seq` were purged: nothing to wait for
                    member.last_id = seq
                    out = own if (own is not None and member.author == author) else text
                    if out is not None:
                        await member.write(out)
                if len(rows) < BACKFILL_BATCH and member.last_id >= room.delivered:
                    break
                if not rows:
                    break
        except Exception as exc:
            logger.warning("member back-fill failed (%s); asking the client to resume", type(exc).__name__)
            with contextlib.suppress(Exception):
                await member.write(
                    protocol.encode(
                        protocol.notice_frame(
                            protocol.NoticeCode.RESYNC,
                            "Some messages were delayed. Fetching them again.",
                            last_id=member.last_id,
                        )
                    )
                )
        finally:
            member.backfilling = False

    async def _read_for_backfill(self, room_id: int, after: int) -> list[tuple[int, str | None, str | None, str]]:
        """The next rows after `after` for a member's back-fill: shared with any member who needs the same rows,
        and at most BACKFILL_READERS such reads at the database at once."""
        key = (room_id, after)
        read = self._backfill_reads.get(key)
        if read is None:
            read = self._backfill_reads[key] = asyncio.ensure_future(self._gated_read(room_id, after))
            read.add_done_callback(lambda _: self._backfill_reads.pop(key, None))
        return await asyncio.shield(read)  # a member leaving mid-read doesn't cancel the others' read

    async def _gated_read(self, room_id: int, after: int) -> list[tuple[int, str | None, str | None, str]]:
        async with self._backfill_readers:
            return await self._fetch_after(room_id, after, BACKFILL_BATCH)

    async def resume_member(self, member: Member, after: int) -> int:
        """Send a member every message after `after` (their own copy of their own), in order."""
        room = self.rooms.get(member.room)
        member.backfilling = True
        try:
            room_id = room.room_id if room else 0
            # An id past the newest message (a stale client, a recreated room) must not silence the socket.
            cursor = min(after, (await self._room_heads([room_id])).get(room_id, 0))
            member.last_id = cursor
            while True:
                rows = await self._fetch_after(room_id, cursor, BACKFILL_BATCH)
                for seq, text, own, author in rows:
                    cursor = seq
                    out = own if (own is not None and member.author == author) else text
                    if out is not None:
                        await member.write(out)
                if len(rows) < BACKFILL_BATCH:
                    break
            member.last_id = cursor
            return member.last_id
        finally:
            member.backfilling = False
            if room is not None and member.last_id < room.delivered:
                self._start_backfill(member)

    # -- presence --
    def _presence_changed(self, room: _Room) -> None:
        if room.presence_task is None and self.loop is not None:
            room.presence_task = self.loop.create_task(self._presence_soon(room))

    async def _presence_soon(self, room: _Room) -> None:
        try:
            await asyncio.sleep(PRESENCE_DEBOUNCE_SECONDS)
        finally:
            room.presence_task = None
        await self._publish_roster(room)
        await self._send_presence(room)

    def _local_roster(self, room: _Room) -> list[list[str]]:
        seen: dict[str, str] = {}
        for member in room.members.values():
            seen.setdefault(member.author, member.handle)
        return [[tag, handle] for tag, handle in seen.items()]

    async def _publish_roster(self, room: _Room) -> None:
        event = {
            "type": protocol.EVENT_ROOM_ROSTER,
            "room": room.slug,
            "process": self.process_id,
            "members": self._local_roster(room),
        }
        await self._layer_call("group_send", room_group(room.slug), event)

    async def _send_presence(self, room: _Room) -> bool:
        """Send the room's presence to local members if it changed; return whether it did."""
        text = self._presence_text(room)
        if text == room.presence_text:
            return False
        room.presence_text = text
        await self._write_all(room, {"text": text}, None)
        return True

    def people_here(self, slug: str) -> set[str]:
        """Return the author tags of everyone in a room, on this process and (from their rosters) others."""
        room = self.rooms.get(slug)
        if room is None:
            return set()
        now = time.monotonic()
        people = {tag for tag, _ in self._local_roster(room)}
        for expires, members in room.remote_rosters.values():
            if expires >= now:
                people.update(tag for tag, _ in members)
        return people

    def _presence_text(self, room: _Room) -> str:
        now = time.monotonic()
        people: dict[str, str] = {}
        for process, (expires, members) in list(room.remote_rosters.items()):
            if expires < now:
                del room.remote_rosters[process]
                continue
            people.update({tag: handle for tag, handle in members})
        people.update({tag: handle for tag, handle in self._local_roster(room)})
        text = protocol.encode(
            {
                "type": protocol.ServerType.PRESENCE.value,
                "count": len(people),
                "handles": sorted(people.values(), key=str.casefold),
            }
        )
        return text

    # -- background --
    async def _receive_loop(self, layer: Any) -> None:
        while True:
            try:
                event = await layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.counters["layer_errors"] += 1
                logger.warning("channel layer receive failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(0.5)
                continue
            try:
                await self.handle_event(event)
            except Exception:
                logger.exception("hub could not handle a %s event", event.get("type"))

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("hub tick failed (%s)", type(exc).__name__)

    async def _tick(self) -> None:
        if not self.rooms:
            return
        if time.monotonic() - self._slots_refreshed > sockets.SLOT_REFRESH_SECONDS:
            self._slots_refreshed = time.monotonic()
            live = {key: m.conn_id for room in self.rooms.values() for m in room.members.values() for key in m.slots}
            await asyncio.to_thread(sockets.refresh_slots, live)
        heads = await self._room_heads([room.room_id for room in self.rooms.values()])
        for room in list(self.rooms.values()):
            await self._resume_drained(room)
            # Re-subscribe (Redis may have restarted and forgotten us) and say who is here.
            await self._layer_call("group_add", room_group(room.slug), self.channel)
            await self._publish_roster(room)
            await self._send_presence(room)
            head = heads.get(room.room_id, 0)
            if room.next_seq is not None and head > room.delivered and room.gap_task is None:
                # Stored but never received: a publish was lost. Fetch it from the database.
                room.gap_task = asyncio.create_task(self._sweep(room, head))

    async def _sweep(self, room: _Room, head: int) -> None:
        try:
            while room.next_seq is not None and room.delivered < head:
                rows = await self._fetch_after(room.room_id, room.delivered, BACKFILL_BATCH)
                self._skip_missing(room, rows, upto=head)
                if not rows:
                    break
                self.counters["gap_backfills"] += 1
                self._queue_rows(room, rows)
                await self._drain(room)
        finally:
            room.gap_task = None

    async def _layer_call(self, name: str, *args: Any) -> None:
        layer = get_channel_layer()
        if layer is None or self.channel in (None, "local"):
            return
        try:
            await getattr(layer, name)(*args)
        except Exception as exc:
            self.counters["layer_errors"] += 1
            logger.warning("channel layer %s failed (%s)", name, type(exc).__name__)


# --- Database reads the hub needs (kept here so the hub has no model imports at module level) -------------


async def _fetch_after(room_id: int, after: int, limit: int) -> list[tuple[int, str | None, str | None, str]]:
    from chat.selectors import encoded_messages_after

    return await database_sync_to_async(encoded_messages_after)(room_id=room_id, after=after, limit=limit)


async def _room_heads(room_ids: list[int]) -> dict[int, int]:
    from rooms.models import Room

    def read() -> dict[int, int]:
        return dict(Room.objects.filter(pk__in=room_ids).values_list("pk", "last_seq"))

    return await database_sync_to_async(read)()


def process_label() -> str:
    return f"{os.getpid()}"
