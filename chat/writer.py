"""The send writer: a process beside each daphne process that stores its batches of sends.

Why a process: everything a send costs before fan-out (the room's rules, the rate limit, the crisis scan, the
database write, the sanitised and encoded frames) is Python, and Python work in daphne's database thread holds
the same interpreter lock as the event loop that writes to every member's socket. In a busy room that work took
a fifth of the loop's time (`python -m bench.profile`). In a process of its own it runs on another core and the
loop only hands over each batch and publishes what was stored.

The protocol is one request at a time over a pipe (chat/sending.py writes one batch at a time anyway):
    request: [(room id, participant, body, client_id), ...]
    reply:   (kind, outcomes or error class name, events)
`events` are the channel-layer events the store published as it committed (chat/broadcast.py collects them in
the writer instead of sending them); the server publishes them in order, as if its own thread had committed.

If the writer dies or stops answering, the batch it held is answered `unavailable` (the browser retries with the
same client_id, and a message that was stored after all is found and returned, not stored twice); anything it
committed but could not announce is found by the hubs' gap fill and sweep. The next batch starts a new writer.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pickle  # nosec B403: only between this process and the writer it started, over a private pipe
import socket
import subprocess  # nosec B404: starts this project's own writer module
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from django.conf import settings
from django.db import OperationalError

from chat.protocol import ErrorCode, ProtocolError

logger = logging.getLogger("saathi.writer")

START_TIMEOUT_SECONDS = 60.0  # a fresh writer imports Django and the project (1-3 s on a quiet machine)
STOP_TIMEOUT_SECONDS = 5.0  # how long a stopping server waits for its writer to finish a batch and exit
ROOMS_KEPT_SECONDS = 60.0  # the writer's copy of a room (name, slug, rules) is read again after this long


@dataclass(frozen=True, slots=True)
class Receipt:
    """A send the writer accepted: new (its frame is being delivered), or a retry of one already stored."""

    created: bool
    own_text: str | None  # the author's stored copy, encoded, for a retry (None for a new message)

    def own_copy_text(self) -> str:
        assert self.own_text is not None
        return self.own_text


Outcome = Receipt | ProtocolError
# A batch's reply from the writer: ("stored", wire outcomes, events), or ("database" | "error", the error's class
# name, events); `events` are what the writer published as it committed (see the module's docstring).
Reply = tuple[str, Any, list[tuple[str, dict[str, Any]]]]


class SendWriter:
    """This server process's writer, and the one thread that talks to it (so the event loop never blocks)."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="send-writer")
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._starting = threading.Event()  # set from start_in_background until that start succeeds or fails
        # A server that exits lets its writer close its database connection before it goes, rather than leaving
        # PostgreSQL to notice a vanished client.
        atexit.register(self.stop)

    def start_in_background(self) -> None:
        """Start the writer now, so the first send doesn't wait for its start-up."""
        self._starting.set()
        self._thread.submit(self._started_quietly)

    def starting(self) -> bool:
        """True while the start asked for by `start_in_background` is still under way."""
        return self._starting.is_set()

    def run_on_thread(self, work: Callable[[], None]) -> None:
        """Run `work` on the thread that talks to the writer (the send queue's batches go from there)."""
        self._thread.submit(work)

    def store(self, sends: list[Any]) -> Reply:
        """Store a batch of sends (chat.services.SendIntent) in the writer and return its reply (see `outcomes`).
        Blocks: call it on the writer's thread (`run_on_thread`), not on the event loop."""
        return self._round_trip([(send.room.pk, send.participant, send.body, send.client_id) for send in sends])

    def stop(self) -> None:
        """Let the writer finish and go: it exits when its socket closes (and is killed if it doesn't)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):  # then killed
                    self._process.wait(STOP_TIMEOUT_SECONDS)
            self._discard()

    # -- on the writer thread ----------------------------------------------------------------------------------
    def _round_trip(self, request: list[tuple[Any, ...]]) -> Reply:
        with self._lock:
            try:
                conn = self._started()
                conn.send_bytes(pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))
                if not conn.poll(settings.SAATHI_SEND_WRITER_TIMEOUT):
                    raise TimeoutError("no answer")
                reply = pickle.loads(conn.recv_bytes())  # noqa: S301  # nosec B301: from our own writer
            except (EOFError, OSError, TimeoutError, pickle.PickleError) as exc:
                # Whatever it was doing is lost with it; the senders retry, and a stored message is found then.
                logger.warning("send writer failed (%s); starting a new one", type(exc).__name__)
                self._discard()
                return "database", type(exc).__name__, []
        return reply  # type: ignore[no-any-return]

    def _started_quietly(self) -> None:
        with self._lock:
            try:
                self._started()
            except Exception as exc:  # the first batch will try again, and say so
                logger.warning("send writer did not start (%s)", type(exc).__name__)
            finally:
                self._starting.clear()

    def _started(self) -> Connection:
        if self._conn is not None and self._process is not None and self._process.poll() is None:
            return self._conn
        self._discard()
        # A fresh interpreter (not a fork: this process runs an event loop and threads a copy would inherit
        # mid-step), in this process's group, so whatever stops the server stops its writer too.
        ours, theirs = socket.socketpair()
        database = str(settings.DATABASES["default"]["NAME"])  # the test runner renames it after start-up
        argv = [sys.executable, "-m", "chat.writer", str(theirs.fileno()), database, settings.SAATHI_SEND_STORE]
        try:
            self._process = subprocess.Popen(argv, cwd=settings.BASE_DIR, pass_fds=[theirs.fileno()])  # noqa: S603  # nosec B603: our own interpreter and module
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        if not self._conn.poll(START_TIMEOUT_SECONDS):
            self._discard()
            raise TimeoutError("the send writer did not start")
        self._conn.recv_bytes()  # "ready"
        logger.info("send writer started (pid %s)", self._process.pid)
        return self._conn

    def _discard(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(5)
        self._conn = self._process = None


def outcomes(reply: Reply) -> list[Outcome]:
    """On the event loop: publish what a batch's reply says was committed, then return one outcome per send, in
    order. Raises OperationalError (the senders hear `unavailable`) when the database or the writer failed."""
    from chat import broadcast  # not at the top: `python -m chat.writer` loads this module before Django is set up

    kind, payload, events = reply
    broadcast.publish_collected(events)  # what was committed is announced, even if the batch then failed
    if kind == "database":
        raise OperationalError(f"send writer: {payload}")
    if kind == "error":
        raise RuntimeError(f"send writer: {payload}")
    return [_outcome(wire) for wire in payload]


def _outcome(wire: tuple[Any, ...]) -> Outcome:
    if wire[0] == "refused":
        _, code, detail, client_id = wire
        return ProtocolError(ErrorCode(code), detail, client_id)
    _, created, own_text = wire
    return Receipt(created=created, own_text=own_text)


_WRITER: SendWriter | None = None
_WRITER_LOCK = threading.Lock()


def send_writer() -> SendWriter:
    """This process's writer (one per daphne process, started on first use)."""
    global _WRITER
    with _WRITER_LOCK:
        if _WRITER is None:
            _WRITER = SendWriter()
        return _WRITER


def uses_writer_process() -> bool:
    return settings.SAATHI_SEND_WRITER == "process"


def writer_starting() -> bool:
    """True while this process's writer is still starting: the process isn't ready for sends yet (/healthz)."""
    return _WRITER is not None and _WRITER.starting()


# --- In the writer process ------------------------------------------------------------------------------------


def serve(conn: Connection, database_name: str, store_path: str) -> None:  # in the writer process
    """The writer's life: set up Django on the server's database, then store batches with `store_path` (the
    server's SAATHI_SEND_STORE) until the pipe closes."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings as writer_settings

    database = writer_settings.DATABASES["default"]
    database["NAME"] = database_name
    # One thread, one connection, kept open: no pool, no check before every batch. A failed batch closes it
    # if it is broken, and the next batch connects again.
    database.get("OPTIONS", {}).pop("pool", None)
    database["CONN_MAX_AGE"] = None
    database["CONN_HEALTH_CHECKS"] = False
    import django

    django.setup()
    from django.utils.module_loading import import_string

    store = import_string(store_path)
    rooms = _RoomCache()
    from config.runtime import freeze_startup_objects

    freeze_startup_objects()  # as the server does: no collection of Django's start-up objects stalls a batch
    conn.send_bytes(b"ready")
    while True:
        try:
            raw = conn.recv_bytes()
        except (EOFError, OSError):  # the server is gone: so is its writer
            return
        request = pickle.loads(raw)  # noqa: S301  # nosec B301: from the server process that started us
        conn.send_bytes(pickle.dumps(_write_batch(store, rooms, request), protocol=pickle.HIGHEST_PROTOCOL))


class _RoomCache:
    """The rooms sends go to, read once a minute: the rules that change (locks, mutes, the floor) are read fresh
    for every batch by the store; this is the rest (slug, name, kind), as a socket's own copy would be."""

    def __init__(self) -> None:
        self._rooms: dict[int, tuple[Any, float]] = {}

    def get(self, room_ids: set[int]) -> dict[int, Any]:
        from rooms.models import Room

        now = time.monotonic()
        stale = {
            room_id for room_id in room_ids if now - self._rooms.get(room_id, (None, -1e9))[1] > ROOMS_KEPT_SECONDS
        }
        if stale:
            found = Room.objects.in_bulk(stale)
            for room_id in stale:  # a deleted room: a placeholder the store refuses as not_found
                self._rooms[room_id] = (found.get(room_id) or Room(pk=room_id, slug=""), now)
        return {room_id: self._rooms[room_id][0] for room_id in room_ids}


def _write_batch(store: Any, rooms: _RoomCache, request: list[tuple[Any, ...]]) -> tuple[str, Any, list[Any]]:
    from django.db import DatabaseError, connection

    from chat import broadcast
    from chat.failures import log_failure
    from chat.services import SendIntent

    events: list[tuple[str, dict[str, Any]]] = []
    with broadcast.collecting(events):
        try:
            room_of = rooms.get({room_id for room_id, *_ in request})
            sends = [
                SendIntent(room_of[room_id], participant, body, cid) for room_id, participant, body, cid in request
            ]
            outcomes = store(sends)
        except DatabaseError as exc:
            log_failure(logger, "send batch", exc)
            connection.close_if_unusable_or_obsolete()
            return "database", type(exc).__name__, events
        except Exception as exc:
            log_failure(logger, "send batch", exc)
            return "error", type(exc).__name__, events
    return "stored", [_wire(outcome) for outcome in outcomes], events


def _wire(outcome: Any) -> tuple[Any, ...]:
    if isinstance(outcome, ProtocolError):
        return ("refused", outcome.code.value, outcome.detail, outcome.client_id)
    return ("accepted", outcome.created, None if outcome.created else outcome.own_copy_text())


if __name__ == "__main__":  # python -m chat.writer <socket fd> <database name> <store>, started by SendWriter
    serve(Connection(int(sys.argv[1])), sys.argv[2], sys.argv[3])
