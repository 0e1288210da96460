"""The room socket: translate frames into service calls and results into frames. No policy here."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
import uuid
from collections import deque
from collections.abc import Coroutine
from typing import Any

from autobahn.exception import Disconnected as SocketGone
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError

from chat import abuse, protocol, services, sockets
from chat.broadcast import Hub, Member, author_tag
from chat.failures import log_failure
from chat.protocol import CloseCode, ErrorCode, ProtocolError
from chat.sending import send_queue
from chat.transport import frame_writer, pending_bytes_probe

logger = logging.getLogger("saathi.consumers")

# Sockets don't get per-socket channel-layer channels: the process's Hub subscribes once per room.
NO_PER_SOCKET_LAYER = "saathi.no-per-socket-layer"
SESSION_TOUCH_SECONDS = 10 * 60
# A socket's sends awaiting the database at once. Enough for a fast typist's burst to be stored without waiting
# for each round trip; more, and the socket stops being read until the oldest is answered.
SENDS_IN_FLIGHT = 16


class RoomConsumer(AsyncWebsocketConsumer):
    channel_layer_alias = NO_PER_SOCKET_LAYER

    member: Member | None = None
    slot: str | None = None
    address_slot: str | None = None
    session_touched = 0.0
    join: services.JoinResult | None = None
    # This socket's unanswered sends (oldest first) and the answer frames being written for them: made at its
    # first send, so a socket that only listens carries neither (an empty deque and set are ~1 KiB).
    sends_in_flight: deque[asyncio.Future[Any]] | None = None
    answer_writes: set[asyncio.Task[None]] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Channels' own loop (await_many_dispatch) wraps every receive in a new task and an asyncio.wait, so
        # that it can also listen on a per-socket channel-layer channel. Room sockets have none (the hub fans
        # out), so a plain loop does the same: no task and wait per frame, and less memory per idle socket.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        with contextlib.suppress(StopConsumer):
            while True:
                await self.dispatch(await receive())

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' own dispatch first closes stale database connections in a thread hop, for every frame
        # (pings included). Every database call here already runs through database_sync_to_async, which
        # does exactly that in its own thread, so the extra hop is skipped on the hot path.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.conn_id = uuid.uuid4().hex
        self.frame_window = (time.monotonic(), 0)
        self.refusals: list[float] = []
        await self.accept()
        # Per-address caps first, before any database work (chat/abuse.py; the per-person cap is below).
        allowed = await database_sync_to_async(abuse.allow_handshake)(self.scope)
        self.address_slot = (
            await database_sync_to_async(abuse.claim_address_slot)(self.scope, self.conn_id) if allowed else None
        )
        if self.address_slot is None:
            detail = "Too many connections from your network. Wait a minute and try again."
            await self.send_frame(protocol.error_frame(ErrorCode.RATE_LIMITED, detail))
            await self.close(code=int(CloseCode.TOO_MANY))  # autobahn refuses an IntEnum
            return
        slug = self.scope["url_route"]["kwargs"]["slug"]
        resume_after = _query_int(self.scope, "after")
        try:
            join = await database_sync_to_async(services.join_room)(
                slug=slug,
                user=self.scope.get("user"),
                session=self.scope.get("session"),
                resume_after=resume_after,
            )
        except DatabaseError as exc:
            log_failure(logger, "join", exc)
            await self.send_frame(protocol.error_frame(ErrorCode.UNAVAILABLE, "The service is busy. Reconnecting…"))
            await self.close(code=1013)
            return
        if join.close_code is not None:
            frame = protocol.error_frame(
                ErrorCode.NOT_ALLOWED if join.close_code != 4404 else ErrorCode.NOT_FOUND, join.reason
            )
            if join.opens_at:
                frame["opens_at"] = join.opens_at.isoformat()
            await self.send_frame(frame)
            await self.close(code=join.close_code)
            return
        assert join.participant is not None and join.room is not None and join.welcome is not None
        self.slot = await database_sync_to_async(sockets.claim_slot)(join.participant.author_key, self.conn_id)
        if self.slot is None:
            await self.send_frame(
                protocol.error_frame(
                    ErrorCode.RATE_LIMITED, "You have too many meetings open. Close one and try again."
                )
            )
            await self.close(code=int(CloseCode.TOO_MANY))  # autobahn refuses an IntEnum
            return
        hub = Hub.get()
        author = author_tag(join.participant.author_key)
        if services.room_is_full(join=join, people_here=hub.people_here(join.room.slug), author=author):
            detail = f"This meeting is full ({join.capacity} people). We'll keep trying to get you in."
            await self.send_frame(protocol.error_frame(ErrorCode.RATE_LIMITED, detail))
            await database_sync_to_async(sockets.release_slot)(self.slot)
            self.slot = None
            await self.close(code=CloseCode.TOO_MANY)
            return
        self.session_touched = time.monotonic()  # the room page's own request just slid the session
        await self.send_frame(join.welcome)
        # Kept for the socket's life, but not the welcome: its history alone can be tens of KiB per socket.
        self.join = dataclasses.replace(join, welcome=None)
        self.member = Member(
            conn_id=self.conn_id,
            room=join.room.slug,
            author=author,
            handle=join.participant.handle,
            last_id=resume_after if resume_after is not None else join.last_id,
            write=self._write_text,
            close=self._close_from_hub,
            pending=pending_bytes_probe(self.base_send),
            write_frame=frame_writer(self.base_send),
            slots=tuple(key for key in (self.slot, self.address_slot) if key),
        )
        if resume_after is not None:
            self.member.backfilling = True  # the resume below streams the gap; the hub holds off until then
        await hub.join(self.member, join.room.pk)
        if resume_after is not None:
            last = await hub.resume_member(self.member, resume_after)
            await self.send_frame({"type": protocol.ServerType.RESUMED.value, "last_id": last})

    async def disconnect(self, code: int) -> None:
        if self.address_slot:
            await database_sync_to_async(abuse.release_address_slot)(self.address_slot)
            self.address_slot = None
        if self.member is not None:
            await Hub.get().leave(self.member)
            self.member = None
        if self.slot is not None and self.join is not None and self.join.participant is not None:
            await database_sync_to_async(sockets.release_slot)(self.slot)
            self.slot = None

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.member is None or self.join is None:
            return
        if time.monotonic() - self.session_touched > SESSION_TOUCH_SECONDS:
            await self._keep_session_alive()
        if not self._frame_allowed():
            await self._refuse(ProtocolError(ErrorCode.RATE_LIMITED, "Too many frames. Slow down."))
            return
        request: protocol.ClientRequest | None = None
        try:
            request = protocol.parse_client_frame(text_data if text_data is not None else bytes_data)
            await self._handle(request)
        except Exception as exc:  # never let one frame take the socket down
            await self._answer_failure(exc, getattr(request, "client_id", None))

    async def _answer_failure(self, exc: BaseException, client_id: Any) -> None:
        """Tell the sender why a frame (or a send, by its client_id) was not handled."""
        if isinstance(exc, ProtocolError):
            await self._refuse(exc)
        elif isinstance(exc, DatabaseError):
            log_failure(logger, "frame", exc)
            await self.send_frame(
                protocol.error_frame(
                    ErrorCode.UNAVAILABLE,
                    "Not sent: the service is busy. It will be retried.",
                    client_id=str(client_id) if client_id else None,
                )
            )
        else:
            log_failure(logger, "frame", exc)
            await self.send_frame(protocol.error_frame(ErrorCode.INVALID, "That frame could not be handled."))

    async def _handle(self, request: protocol.ClientRequest) -> None:
        assert self.join is not None and self.join.room is not None and self.join.participant is not None
        assert self.member is not None
        if isinstance(request, protocol.SendRequest):
            await self._send(request)
            return
        await self._sends_settled(0)  # any other frame is answered after this socket's sends, in order
        if isinstance(request, protocol.PingRequest):
            await self.send_frame(protocol.pong_frame())
        elif isinstance(request, protocol.ResumeRequest):
            last = await Hub.get().resume_member(self.member, request.after)
            await self.send_frame({"type": protocol.ServerType.RESUMED.value, "last_id": last})
        else:
            await self.handle_extension(request)

    async def _send(self, request: protocol.SendRequest) -> None:
        """Queue a send and go on reading: a member's next message doesn't wait for this one's round trip to the
        database (they are stored in order). Its answer is handled when it comes (`_send_answered`); past
        SENDS_IN_FLIGHT unanswered sends, reading waits for the oldest, so a fast sender is held back by TCP."""
        assert self.join is not None and self.join.room is not None and self.join.participant is not None
        answer = send_queue().submit(
            services.SendIntent(self.join.room, self.join.participant, request.body, request.client_id)
        )
        if self.sends_in_flight is None:
            self.sends_in_flight = deque()
        self.sends_in_flight.append(answer)
        answer.add_done_callback(functools.partial(self._send_answered, request.client_id))
        await self._sends_settled(SENDS_IN_FLIGHT - 1)

    async def _sends_settled(self, at_most: int) -> None:
        """Wait until at most `at_most` of this socket's sends are unanswered (oldest first); with 0, until every
        answer frame is written too, so what the socket says next comes after them."""
        while self.sends_in_flight and len(self.sends_in_flight) > at_most:
            await asyncio.wait([self.sends_in_flight[0]])  # not cancelled with us: a stored send stands
        if at_most == 0 and self.answer_writes:
            await asyncio.wait(list(self.answer_writes))

    def _send_answered(self, client_id: Any, answer: asyncio.Future[Any]) -> None:
        assert self.sends_in_flight is not None
        self.sends_in_flight.remove(answer)
        if answer.cancelled():
            return
        failure = answer.exception()
        outcome = failure or answer.result()
        if isinstance(outcome, BaseException):  # a refusal (ProtocolError) or the database failed
            self._later(self._answer_failure(outcome, client_id))
        elif not outcome.created:  # a retry of a stored message: give the sender their copy again
            self._later(self._write_text(outcome.own_copy_text()))
        # A new message needs no answer here: the sender's copy comes with everyone's.

    def _later(self, frame_write: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(frame_write)
        if self.answer_writes is None:
            self.answer_writes = set()
        self.answer_writes.add(task)  # held until done, so it isn't garbage-collected mid-write
        task.add_done_callback(self.answer_writes.discard)

    async def handle_extension(self, request: protocol.ClientRequest) -> None:
        """Frames served by other apps (moderation, the speaking queue)."""
        from chat.extensions import dispatch_extension

        frames = await dispatch_extension(self.join, request, self.conn_id)
        for frame in frames:
            await self.send_frame(frame)

    async def _refuse(self, refusal: ProtocolError) -> None:
        await self.send_frame(refusal.frame())
        if refusal.code == ErrorCode.RATE_LIMITED:
            now = time.monotonic()
            self.refusals = [t for t in self.refusals if now - t < 60] + [now]
            if len(self.refusals) >= settings.SAATHI_FLOOD_CLOSE_AFTER:
                await self.close(code=int(CloseCode.TOO_MANY))  # autobahn refuses an IntEnum

    def _frame_allowed(self) -> bool:
        start, count = self.frame_window
        now = time.monotonic()
        if now - start > 60:
            self.frame_window = (now, 1)
            return True
        self.frame_window = (start, count + 1)
        return count + 1 <= settings.SAATHI_FRAMES_PER_MINUTE

    async def _keep_session_alive(self) -> None:
        """Sitting in a meeting is activity: slide the idle-session window as an HTTP request would."""
        self.session_touched = time.monotonic()
        session = self.scope.get("session")
        if session is not None and session.session_key:
            try:
                await database_sync_to_async(session.save)()
            except Exception as exc:  # an expired or deleted session: the next join will say so
                log_failure(logger, "session touch", exc)

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self._write_text(protocol.encode(frame))

    async def _write_text(self, text: str) -> None:
        # The client may leave mid-write; daphne delivers the disconnect next, which cleans up.
        with contextlib.suppress(SocketGone):
            await self.base_send({"type": "websocket.send", "text": text})

    async def _close_from_hub(self, code: int) -> None:
        await self.close(code=code)
        # daphne sends websocket.disconnect later; drop from the hub now so nothing more is written.
        if self.member is not None:
            await Hub.get().leave(self.member)
            self.member = None


def _query_int(scope: dict[str, Any], name: str) -> int | None:
    from urllib.parse import parse_qs

    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
    if not values:
        return None
    try:
        value = int(values[0])
    except ValueError:
        return None
    return value if 0 <= value < 2**53 else None
