"""Group commit's pacing: a lone send is written at once; a stream of sends shares batches.

Every test runs twice: with the batches written from the event loop on the database thread (SQLite, and the test
suite's own process), and from the thread that talks to a send writer process (PostgreSQL servers), here a
stand-in that calls the same store in that thread.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils.module_loading import import_string

from chat import writer
from chat.protocol import ErrorCode, ProtocolError
from chat.sending import SendQueue
from chat.services import SendIntent

_BATCH_NUMBERS = itertools.count(1)


def recording_store(sends):
    """Stands in for chat.services.post_messages: answers each send with its body and its batch's number."""
    batch = next(_BATCH_NUMBERS)  # (the queue imports this by name, perhaps as a second copy of this module)
    return [(send.body, batch) for send in sends]


def batch_sizes(answers) -> list[int]:
    sizes: dict[int, int] = {}
    for _, batch in answers:
        sizes[batch] = sizes.get(batch, 0) + 1
    return list(sizes.values())


def send(body: str) -> SendIntent:
    return SendIntent(room=None, participant=None, body=body, client_id=uuid.uuid4())  # type: ignore[arg-type]


STORE = "tests.unit.test_sending.recording_store"
pytestmark = pytest.mark.django_db  # the queue's database hop closes stale connections first


class StandInWriter:
    """The send writer's side of the queue without its process: the store runs on the writer's thread, and each
    batch's start (time.monotonic) is recorded."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1)
        self.batch_starts: list[float] = []

    def run_on_thread(self, work) -> None:
        self._thread.submit(work)

    def store(self, sends):
        self.batch_starts.append(time.monotonic())
        return ("stored", import_string(settings.SAATHI_SEND_STORE)(sends), [])


@pytest.fixture(autouse=True, params=["database thread", "writer thread"])
def stand_in_writer(request, monkeypatch):
    if request.param == "database thread":
        monkeypatch.setattr(writer, "uses_writer_process", lambda: False)
        yield None
        return
    stand_in = StandInWriter()
    monkeypatch.setattr(writer, "uses_writer_process", lambda: True)
    monkeypatch.setattr(writer, "send_writer", lambda: stand_in)
    monkeypatch.setattr(writer, "outcomes", lambda reply: reply[1])  # the store's own answers, as they are
    yield stand_in
    stand_in._thread.shutdown()


@override_settings(SAATHI_SEND_STORE=STORE, SAATHI_SEND_BATCH_INTERVAL=0.5)
async def test_a_send_after_a_quiet_spell_is_written_at_once_not_after_the_interval():
    queue = SendQueue()
    assert (await queue.submit(send("first")))[0] == "first"
    await asyncio.sleep(0.6)  # the process goes quiet for longer than the interval
    started = time.monotonic()
    assert (await queue.submit(send("hello")))[0] == "hello"
    assert time.monotonic() - started < 0.4  # not held back for the interval


@override_settings(SAATHI_SEND_STORE=STORE, SAATHI_SEND_BATCH_INTERVAL=0.1)
async def test_a_stream_of_sends_is_written_in_a_few_batches_each_sender_answered_in_order():
    queue = SendQueue()

    async def sender(n: int) -> str:
        await asyncio.sleep(n * 0.01)  # 40 sends over 0.4 s, each from its own socket
        return await queue.submit(send(f"m{n}"))

    answers = await asyncio.gather(*(sender(n) for n in range(40)))
    assert [body for body, _ in answers] == [f"m{n}" for n in range(40)]
    assert [batch for _, batch in answers] == sorted(batch for _, batch in answers)  # written in arrival order
    # About one batch per interval once the stream is seen (a few sends go singly first), not one per send.
    assert len(batch_sizes(answers)) <= 9


def store_taking(seconds: float):
    """A database that takes `seconds` over every batch, answering each send with its body."""

    def store(sends):
        time.sleep(seconds)
        return [(send.body, 0) for send in sends]

    return store


store_taking_20_ms = store_taking(0.02)
slow_store = store_taking(0.4)


@override_settings(SAATHI_SEND_STORE="tests.unit.test_sending.store_taking_20_ms", SAATHI_SEND_BATCH_INTERVAL=0.2)
async def test_two_people_sending_at_the_same_moment_at_a_meetings_pace_are_not_held_back_for_the_interval():
    queue = SendQueue()

    async def second_person() -> tuple[str, float]:
        await asyncio.sleep(0.005)  # arrives while the first send is being written
        answer = await queue.submit(send("b"))
        return answer[0], time.monotonic()

    for _ in range(3):  # a pair of sends at once, once a second: well under one send per interval
        started = time.monotonic()
        first, (second, second_done) = await asyncio.gather(queue.submit(send("a")), second_person())
        assert (first[0], second) == ("a", "b")
        assert second_done - started < 0.1  # written right after the first, not held until 0.2 s after it
        await asyncio.sleep(1.0)


@override_settings(SAATHI_SEND_STORE=STORE, SAATHI_SEND_BATCH_INTERVAL=0)
async def test_with_no_interval_a_send_goes_as_soon_as_the_previous_batch_is_written():
    queue = SendQueue()
    answers = [await queue.submit(send(f"m{n}")) for n in range(3)]
    assert batch_sizes(answers) == [1, 1, 1]


@override_settings(SAATHI_SEND_STORE="tests.unit.test_sending.slow_store", SAATHI_MAX_SEND_WAIT=0.2)
async def test_once_a_send_has_waited_too_long_new_sends_are_refused_busy_and_the_waiting_ones_still_stored():
    queue = SendQueue()
    first = asyncio.ensure_future(queue.submit(send("first")))
    await asyncio.sleep(0.05)
    burst = [asyncio.ensure_future(queue.submit(send(f"burst {n}"))) for n in range(30)]  # many sockets at once
    await asyncio.sleep(0.25)  # "first" has now waited longer than the limit
    with pytest.raises(ProtocolError) as refused:
        queue.submit(send("late"))
    assert refused.value.code == ErrorCode.UNAVAILABLE  # the sender is told at once, and may retry
    assert (await first)[0] == "first"
    assert [body for body, _ in await asyncio.gather(*burst)] == [f"burst {n}" for n in range(30)]  # none refused
    assert (await queue.submit(send("later")))[0] == "later"  # caught up: accepted again


@pytest.mark.parametrize("stand_in_writer", ["writer thread"], indirect=True)  # the loop's own writer waits by design
@override_settings(SAATHI_SEND_STORE="tests.unit.test_sending.store_taking_20_ms")
async def test_with_a_writer_process_the_next_batch_is_written_while_the_loop_is_busy_delivering(stand_in_writer):
    # The loop writing a big room's frames must not hold back the next batch: its senders' messages would wait
    # for the delivery before them, and the next batch would gather more, whose delivery would take longer...
    queue = SendQueue()
    first = queue.submit(send("first"))
    second = queue.submit(send("second"))  # waits for the first batch
    busy_since = time.monotonic()
    time.sleep(0.3)  # the loop is busy (a burst of deliveries): it takes no callback for 300 ms
    busy_until = time.monotonic()
    assert [(await first)[0], (await second)[0]] == ["first", "second"]
    assert len(stand_in_writer.batch_starts) == 2
    assert busy_since < stand_in_writer.batch_starts[1] < busy_until  # written meanwhile, not after
