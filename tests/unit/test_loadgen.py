"""The benchmark's frame reader: a welcome is a welcome, even when its history holds benchmark messages."""

from __future__ import annotations

import asyncio
import json

from bench.loadgen import Client, Worker

BENCH_BODY = "bx|7|3|0|123456789|padding"  # the shape of a benchmark message body (MARKER, step, number, ...)


def delivered_to(client: Client, frame: dict) -> None:
    client._on_text(json.dumps(frame, separators=(",", ":")).encode())


async def test_a_welcome_whose_history_holds_benchmark_messages_completes_the_handshake():
    client = Client(Worker(0, "json:dumps"), 0, room=0, port=1, path="/ws/rooms/r/", headers={})
    history = [{"type": "message", "id": 1, "handle": "m1", "body": BENCH_BODY}]
    delivered_to(client, {"type": "welcome", "room": {"slug": "r"}, "history": history, "last_id": 1})
    assert client.ready.done() and client.ready.exception() is None
    assert client.worker.arrivals == 0  # history is not a delivery of this run's step


async def test_a_benchmark_message_is_counted_as_a_delivery_not_a_welcome():
    client = Client(Worker(0, "json:dumps"), 0, room=0, port=1, path="/ws/rooms/r/", headers={})
    delivered_to(client, {"type": "message", "id": 2, "handle": "m1", "body": BENCH_BODY})
    assert client.worker.arrivals == 1
    assert not client.ready.done()
    await asyncio.sleep(0)
