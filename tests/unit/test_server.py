"""daphne's per-socket input queue (chat/server.py): first in, first out, and nothing lost to a cancelled get."""

from __future__ import annotations

import asyncio

from chat.server import InputQueue


async def test_items_come_out_in_the_order_they_went_in() -> None:
    queue = InputQueue()
    for n in range(3):
        queue.put_nowait(n)
    assert [await queue.get() for _ in range(3)] == [0, 1, 2]


async def test_a_waiting_get_wakes_when_an_item_is_put() -> None:
    queue = InputQueue()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.put_nowait({"type": "websocket.connect"})
    assert await asyncio.wait_for(getter, 1) == {"type": "websocket.connect"}


async def test_a_cancelled_get_leaves_its_item_for_the_next_getter() -> None:
    queue = InputQueue()
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("frame")  # wakes `first`, which is cancelled before it runs
    first.cancel()
    assert await asyncio.wait_for(second, 1) == "frame"
    assert first.cancelled()


async def test_two_waiting_getters_each_get_one_item() -> None:
    queue = InputQueue()
    getters = [asyncio.ensure_future(queue.get()) for _ in range(2)]
    await asyncio.sleep(0)
    queue.put_nowait("a")
    queue.put_nowait("b")
    assert sorted(await asyncio.wait_for(asyncio.gather(*getters), 1)) == ["a", "b"]
