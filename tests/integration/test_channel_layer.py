"""Our channel layer against the real Redis: a batch goes out in one pipeline, in order, and a process
doesn't read back what it already delivered itself, while every other process gets all of it."""

from __future__ import annotations

import asyncio
import secrets

from tests.privacy.test_encryption import layer_settings


async def test_a_batch_arrives_in_order_elsewhere_and_our_own_echo_is_dropped_unread(redis_url: str) -> None:
    from chat.layers import PubSubChannelLayer

    config = layer_settings(redis_url)["default"]["CONFIG"]
    here, elsewhere = PubSubChannelLayer(**config), PubSubChannelLayer(**config)  # two server processes
    group = f"room.layer-{secrets.token_hex(4)}"
    try:
        hub_here, hub_elsewhere = await here.new_channel("hub."), await elsewhere.new_channel("hub.")
        await here.group_add(group, hub_here)
        await elsewhere.group_add(group, hub_elsewhere)
        batch = [
            (group, {"type": "room.frame", "seq": 1}, True),  # delivered here already
            (group, {"type": "room.roster", "seq": None}, False),  # this process needs it back too
            (group, {"type": "room.frame", "seq": 2}, True),
        ]
        await here.group_send_many(batch)
        got_elsewhere = [await asyncio.wait_for(elsewhere.receive(hub_elsewhere), 5) for _ in batch]
        assert [(e["type"], e["seq"]) for e in got_elsewhere] == [(e["type"], e["seq"]) for _, e, _ in batch]
        assert (await asyncio.wait_for(here.receive(hub_here), 5))["type"] == "room.roster"
        await elsewhere.group_send(group, {"type": "room.frame", "seq": 3})  # another process's message
        assert (await asyncio.wait_for(here.receive(hub_here), 5))["seq"] == 3  # nothing of ours came in between
    finally:
        await here.flush()
        await elsewhere.flush()
