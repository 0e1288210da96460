"""Sends wait here to be written together: group commit for the room sockets of one process.

Every send used to take its own trip to the database thread: a thread hop, a rule query, a transaction and
a commit, one after another, so a busy process was bounded by that one thread's round trips. Now a send
joins a queue; while the database thread writes one batch, the sends that arrive meanwhile wait, and go
together in the next one (`chat.services.post_messages`): one hop, one rule query, one transaction, one
commit. An idle process writes a lone send at once, as before; a busy one writes bigger batches, so it
does more with the same thread. Each sender still gets its own answer: the stored message or its refusal.
On PostgreSQL the batches go to the process's send writer (chat/writer.py) instead of its database thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Sequence

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils.module_loading import import_string

from chat import services, writer
from chat.protocol import ErrorCode, ProtocolError

# What a sender hears back: a PostResult from the store on this process's database thread, a Receipt from the
# send writer process. Both say whether the message is new, and give the author's copy for a retry.
Answer = services.PostResult | writer.Receipt

logger = logging.getLogger("saathi.sending")

# A send waiting to be written: the send, the future its socket awaits, and when it arrived (time.monotonic).
Waiting = tuple[services.SendIntent, asyncio.Future[Answer | ProtocolError], float]

BATCH_LIMIT = 128  # sends written in one transaction at most
RATE_WINDOW_INTERVALS = 3  # the send rate that decides pacing is averaged over about this many batch intervals


class SendQueue:
    """The sends of one event loop that wait for the database, written in arrival order, a batch at a time.

    With a send writer process, batches go from the thread that talks to it: when the writer answers one batch,
    that thread sends the next at once, while the event loop may still be writing the last batch's frames to a
    room's members. Driven from the loop, every batch waited for that delivery first, so a busy room's batches,
    and the deliveries that followed them, grew with each other (docs/performance.md, eleventh session). The
    loop only hands over each answer: it publishes what was stored and answers the senders.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # submit() runs on the loop, the batches may go from the writer's thread
        self._waiting: list[Waiting] = []
        self._writing = False  # whether a batch is being written or will be: one writer at a time
        self._writer_task: asyncio.Task[None] | None = None  # held, so a running task isn't garbage-collected
        self._unanswered = 0  # sends waiting or being written
        self._last_batch_at = float("-inf")  # when the last batch started
        self._writing_since: float | None = None  # arrival of the oldest send in the batch being written
        self._rate = 0.0  # sends per second, a moving average (see _arrival)
        self._rate_at = 0.0  # when the last send counted in it arrived

    def submit(self, send: services.SendIntent) -> asyncio.Future[Answer | ProtocolError]:
        """Queue `send` and return the future of its outcome (its answer or its refusal; the database's error is
        set as the future's exception). Sends are written in the order they are submitted.

        When the process is overloaded (a send has waited over SAATHI_MAX_SEND_WAIT seconds for the database, or
        SAATHI_MAX_SENDS_WAITING sends wait), a send is refused `unavailable` at once, by raising (nothing stored;
        the browser retries it with the same client_id): an overloaded process stays quick to answer.
        """
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        with self._lock:
            if self.overloaded(now):
                raise ProtocolError(
                    ErrorCode.UNAVAILABLE, "The meeting is very busy. Sending again in a moment…", str(send.client_id)
                )
            answer: asyncio.Future[Answer | ProtocolError] = loop.create_future()
            self._arrival(now)
            self._waiting.append((send, answer, now))
            start, self._writing = not self._writing, True
        if start:
            if writer.uses_writer_process():
                send_writer = writer.send_writer()
                send_writer.run_on_thread(functools.partial(self._write_all_from_thread, loop, send_writer))
            else:
                # A fresh context: the writer outlives the socket that started it, and must not inherit its state.
                self._writer_task = loop.create_task(self._write_all(), context=contextvars.Context())
        self._unanswered += 1
        answer.add_done_callback(self._answered)  # answered, failed, or no longer awaited (the socket closed)
        return answer

    def _answered(self, _answer: asyncio.Future[Answer | ProtocolError]) -> None:
        self._unanswered -= 1

    def overloaded(self, now: float) -> bool:
        """Whether sends wait too long, or too many wait: by time, so a burst from many sockets at once that the
        database thread clears in a few batches is not refused, and a stalled database is noticed quickly."""
        if self._unanswered >= settings.SAATHI_MAX_SENDS_WAITING:
            return True
        if self._writing_since is not None:  # the batch being written holds the oldest sends
            return now - self._writing_since > settings.SAATHI_MAX_SEND_WAIT
        return bool(self._waiting) and now - self._waiting[0][2] > settings.SAATHI_MAX_SEND_WAIT

    def _arrival(self, now: float) -> None:
        """Count a send in the moving average of the send rate (exponentially weighted: one `exp` per send)."""
        self._rate = self._decayed_rate(now) + 1 / self._rate_window()
        self._rate_at = now

    def _decayed_rate(self, now: float) -> float:
        return self._rate * math.exp((self._rate_at - now) / self._rate_window())

    @staticmethod
    def _rate_window() -> float:
        return max(settings.SAATHI_SEND_BATCH_INTERVAL, 0.001) * RATE_WINDOW_INTERVALS

    def _pause_before_batch(self, now: float) -> float:
        """How long to let sends gather before the next batch: while sends come faster than one per
        SAATHI_SEND_BATCH_INTERVAL, batches start at most that often, so what arrives meanwhile shares one
        transaction instead of paying for its own. Slower than that, a send rarely has company to wait for, and
        waiting would only delay it (a meeting's usual pace, and a pair of sends from two people at once)."""
        interval = settings.SAATHI_SEND_BATCH_INTERVAL
        with self._lock:
            if self._decayed_rate(now) * interval < 1:
                return 0.0
            return self._last_batch_at + interval - now

    def _take_batch(self) -> list[Waiting]:
        """Take the next batch to write, or return [] and stop writing when nobody waits."""
        with self._lock:
            batch, self._waiting = self._waiting[:BATCH_LIMIT], self._waiting[BATCH_LIMIT:]
            if batch:
                self._last_batch_at = time.monotonic()
                self._writing_since = batch[0][2]
            else:
                self._writing = False
            return batch

    def _write_all_from_thread(self, loop: asyncio.AbstractEventLoop, send_writer: writer.SendWriter) -> None:
        """On the writer's thread: write batches until nobody waits, handing each answer to the loop."""
        try:
            while True:
                pause = self._pause_before_batch(time.monotonic())
                if pause > 0:
                    time.sleep(pause)  # this thread only waits; the loop goes on
                batch = self._take_batch()
                if not batch:
                    return
                try:
                    reply: writer.Reply | Exception = send_writer.store([send for send, _, _ in batch])
                except Exception as exc:  # every sender hears why, and retries (a stored one gets its copy back)
                    reply = exc
                finally:
                    self._writing_since = None
                loop.call_soon_threadsafe(_answer_from_writer, batch, reply)
        except BaseException:  # the loop closed under us (the server is stopping), or a bug: the next send restarts
            with self._lock:
                self._writing = False
            if not loop.is_closed():
                logger.exception("the send queue's writer thread stopped")

    async def _write_all(self) -> None:
        """On the loop, with this process's database thread: write batches until nobody waits."""
        try:
            while True:
                pause = self._pause_before_batch(time.monotonic())
                if pause > 0:
                    await asyncio.sleep(pause)
                batch = self._take_batch()
                if not batch:
                    return
                try:
                    outcomes: Sequence[Answer | ProtocolError] | Exception = await database_sync_to_async(_store())(
                        [send for send, _, _ in batch]
                    )
                except Exception as exc:  # every sender hears why, and retries (a stored one gets its copy back)
                    outcomes = exc
                finally:
                    self._writing_since = None
                _answer(batch, outcomes)
        except BaseException:  # cancelled (its loop is closing): not left "writing", so a next send starts again
            with self._lock:
                self._writing = False
            raise
        finally:
            self._writer_task = None


def _answer(
    batch: list[Waiting],
    outcomes: Sequence[Answer | ProtocolError] | Exception,
) -> None:
    """Give each sender in `batch` its outcome, or the batch's failure."""
    for position, (_, answer, _) in enumerate(batch):
        if answer.done():  # a socket that closed meanwhile no longer waits (its message stands)
            continue
        if isinstance(outcomes, Exception):
            answer.set_exception(outcomes)
        else:
            answer.set_result(outcomes[position])


def _answer_from_writer(
    batch: list[Waiting],
    reply: writer.Reply | Exception,
) -> None:
    """On the loop: publish what the writer stored, and answer the batch's senders."""
    outcomes: Sequence[Answer | ProtocolError] | Exception
    try:
        outcomes = reply if isinstance(reply, Exception) else writer.outcomes(reply)
    except Exception as exc:  # the writer or its database failed: the senders hear `unavailable` and retry
        outcomes = exc
    _answer(batch, outcomes)


def _store() -> Callable[[list[services.SendIntent]], list[services.PostResult | ProtocolError]]:
    return import_string(settings.SAATHI_SEND_STORE)  # chat.services.post_messages (import_string caches)


_QUEUES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SendQueue] = weakref.WeakKeyDictionary()


def send_queue() -> SendQueue:
    """Return the running event loop's queue (daphne runs one loop; tests may run several, one after another)."""
    loop = asyncio.get_running_loop()
    queue = _QUEUES.get(loop)
    if queue is None:
        queue = _QUEUES[loop] = SendQueue()
    return queue
