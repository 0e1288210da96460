"""Two daphne processes, one Redis, one PostgreSQL: a room behaves as one room, whoever serves whom."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async

from tests.system.conftest import Server
from tests.system.helpers import RoomSocket, connect_room, guest_cookie, open_room

pytestmark = [pytest.mark.system, pytest.mark.timeout(60)]

SENDERS = 5
PER_SENDER = 20


async def guests(server: Server, count: int) -> list[str]:
    """Take `count` guest passes over HTTP, in parallel threads."""
    return list(await asyncio.gather(*(asyncio.to_thread(guest_cookie, server.url) for _ in range(count))))


async def stored(room: Any) -> list[tuple[int, str, uuid.UUID]]:
    """Return the room's stored messages as (id, body, client_id), in id order."""
    from chat.models import Message

    query = Message.objects.filter(room=room).order_by("seq").values_list("seq", "body", "client_id")
    return await database_sync_to_async(lambda: list(query))()  # type: ignore[no-any-return]


async def rows_with_client_id(room: Any, client_id: str) -> int:
    from chat.models import Message

    return await Message.objects.filter(room=room, client_id=client_id).acount()


async def test_members_on_two_processes_see_every_message_in_the_same_order(
    shared_server_pair: tuple[Server, Server], live_room: Callable[..., Any]
) -> None:
    room = await database_sync_to_async(live_room)()
    a, b = shared_server_pair
    cookies = await guests(a, SENDERS + 1)
    # Senders alternate between the processes; one silent listener on each side too.
    servers = [a if i % 2 == 0 else b for i in range(SENDERS)]
    senders = [await connect_room(s, room.slug, c) for s, c in zip(servers, cookies, strict=False)]
    listeners = [await connect_room(b, room.slug, cookies[-1]), await connect_room(a, room.slug, cookies[-1])]
    everyone = senders + listeners
    total = SENDERS * PER_SENDER
    try:

        async def talk(i: int, sock: RoomSocket) -> list[str]:
            sent = []
            for n in range(PER_SENDER):
                sent.append(await sock.send_message(f"sender {i} message {n}"))
                await asyncio.sleep(0)  # interleave with the others, but don't wait for anything
            return sent

        sent = await asyncio.gather(*(talk(i, s) for i, s in enumerate(senders)))
        await asyncio.gather(*(s.wait_for_id(total, timeout=30) for s in everyone))
        await asyncio.gather(*(s.quiet(0.3) for s in everyone))  # late duplicates would show up here
        rows = await stored(room)

        assert [seq for seq, _, _ in rows] == list(range(1, total + 1))
        db_bodies = [body for _, body, _ in rows]
        for sock in everyone:
            assert sock.ids() == list(range(1, total + 1)), f"{sock.url}: ids out of order or duplicated"
            assert [m["body"] for m in sock.messages] == db_bodies, f"{sock.url}: a different order than the DB"
        # Each sender's own messages carry its client_ids (and only its own do), in the order it sent them.
        for sock, client_ids in zip(senders, sent, strict=True):
            own = [m["client_id"] for m in sock.messages if "client_id" in m]
            assert own == client_ids
        assert all("client_id" not in m for m in listeners[0].messages)
        # Each sender's messages are stored in the order that sender sent them.
        for i in range(SENDERS):
            theirs = [body for body in db_bodies if body.startswith(f"sender {i} ")]
            assert theirs == [f"sender {i} message {n}" for n in range(PER_SENDER)]
    finally:
        await asyncio.gather(*(s.close() for s in everyone))


async def test_a_member_who_drops_mid_meeting_resumes_on_the_other_process_without_gaps_or_duplicates(
    shared_server_pair: tuple[Server, Server], live_room: Callable[..., Any]
) -> None:
    room = await database_sync_to_async(live_room)()
    a, b = shared_server_pair
    speaker_cookie, reader_cookie = await guests(a, 2)
    total = 40
    async with open_room(b, room.slug, speaker_cookie) as speaker:
        reader = await connect_room(a, room.slug, reader_cookie)
        try:

            async def speak() -> None:
                for n in range(total):  # a steady meeting, still going while the reader reconnects
                    await speaker.send_message(f"share {n}")
                    await asyncio.sleep(0.02)

            talking = asyncio.create_task(speak())
            await reader.wait_for_id(8)
            before = reader.ids()
            reader.drop()  # lost signal: no close frame
            await asyncio.sleep(0.2)  # messages go on without them
            last = before[-1]
            reader = await connect_room(b, room.slug, reader_cookie, after=last)  # the OTHER process
            assert reader.welcome is not None and reader.welcome["history"] == []
            resumed = await reader.frame_of("resumed", timeout=10)
            assert resumed["last_id"] >= last
            await talking
            await reader.wait_for_id(total, timeout=15)
            after = reader.ids()  # a new socket: only what came after the reconnect
            extra = await reader.quiet(0.5)
            assert not [f for f in extra if f["type"] == "message"], "messages after the last one"

            seen = before + after
            assert seen == list(range(1, total + 1)), f"gap or duplicate around the reconnect after id {last}"
            assert [m["body"] for m in reader.messages] == [f"share {n}" for n in range(last, total)]
        finally:
            await reader.close()


async def test_a_member_whose_process_crashes_resumes_after_it_restarts(
    start_servers: Callable[..., list[Server]], live_room: Callable[..., Any]
) -> None:
    room = await database_sync_to_async(live_room)()
    a, b = await asyncio.to_thread(start_servers, 2)  # our own pair: this test kills one
    speaker_cookie, reader_cookie = await guests(a, 2)
    async with open_room(b, room.slug, speaker_cookie) as speaker:
        reader = await connect_room(a, room.slug, reader_cookie)
        try:
            for n in range(5):
                await speaker.send_message(f"before {n}")
            await reader.wait_for_id(5)
            a.kill()  # SIGKILL: no close frame, no clean-up in the hub, slots left in the cache
            for n in range(5):
                await speaker.send_message(f"during {n}")
            await speaker.wait_for_id(10)
            await asyncio.to_thread(a.start)
            reader = await connect_room(a, room.slug, reader_cookie, after=5)
            await reader.frame_of("resumed", timeout=10)
            await speaker.send_message("after 0")
            await reader.wait_for_id(11)
            await asyncio.sleep(0.3)
            assert reader.ids() == list(range(6, 12))
            assert [m["body"] for m in reader.messages] == [f"during {n}" for n in range(5)] + ["after 0"]
        finally:
            await reader.close()


async def test_a_send_retried_with_the_same_client_id_after_reconnecting_returns_the_stored_copy(
    shared_server_pair: tuple[Server, Server], live_room: Callable[..., Any]
) -> None:
    room = await database_sync_to_async(live_room)()
    a, b = shared_server_pair
    author_cookie, peer_cookie = await guests(a, 2)
    async with open_room(b, room.slug, peer_cookie) as peer:
        author = await connect_room(a, room.slug, author_cookie)
        try:
            await author.send_message("warm-up")
            await peer.wait_for_id(1)
            client_id = str(uuid.uuid4())
            await author.send_message("the one that seemed to fail", client_id)
            await peer.wait_for_id(2)  # stored and broadcast...
            author.drop()  # ...but the author's connection died before their copy arrived
            author = await connect_room(b, room.slug, author_cookie, after=1)  # the other process
            # The client doesn't know it was stored; it sends again with the same client_id.
            await author.send_message("the one that seemed to fail", client_id)
            await author.frame_of("resumed")
            await author.quiet(0.5)  # the retry's reply, whether it came before or after `resumed`
            mine = [m for m in author.messages if m.get("client_id") == client_id]
            assert {m["id"] for m in mine} == {2}, "the retry must return the stored copy, with the same id"
            assert all(m["body"] == "the one that seemed to fail" for m in mine)
            assert await rows_with_client_id(room, client_id) == 1
            # The peer heard it once; the retry was not broadcast again.
            extra = await peer.quiet(0.6)
            assert [f for f in extra if f["type"] == "message"] == []
            assert peer.ids() == [1, 2]
            assert [seq for seq, _, _ in await stored(room)] == [1, 2]
        finally:
            await author.close()


async def test_presence_counts_people_on_both_processes(
    shared_server_pair: tuple[Server, Server], live_room: Callable[..., Any]
) -> None:
    room = await database_sync_to_async(live_room)()
    a, b = shared_server_pair
    first, second, third = await guests(a, 3)
    sockets = [
        await connect_room(a, room.slug, first),
        await connect_room(b, room.slug, second),
        await connect_room(b, room.slug, third),
        await connect_room(a, room.slug, third),  # one person on two processes is still one person
    ]
    try:
        frames = await asyncio.gather(
            *(s.frame_of("presence", timeout=8, where=lambda f: f["count"] == 3) for s in sockets)
        )
        handles = {tuple(f["handles"]) for f in frames}
        assert len(handles) == 1 and len(next(iter(handles))) == 3, handles
        await sockets[1].close()  # the second person leaves from process b
        left = await asyncio.gather(
            *(s.frame_of("presence", timeout=8, where=lambda f: f["count"] == 2) for s in (sockets[0], sockets[3]))
        )
        assert all(len(f["handles"]) == 2 for f in left)
    finally:
        await asyncio.gather(*(s.close() for s in sockets))


async def test_a_hub_back_fills_a_delayed_publish_itself_without_asking_members_to_resync(
    start_servers: Callable[..., list[Server]], live_room: Callable[..., Any], redis_url: str
) -> None:
    """Pub/Sub held up (here by undecryptable junk on the room's channel): the hub reads the gap from the DB."""
    import redis.asyncio as aioredis

    room = await database_sync_to_async(live_room)()
    a, b = await asyncio.to_thread(start_servers, 2)
    here, there, reader_cookie = await guests(a, 3)
    junk = aioredis.Redis.from_url(redis_url)
    async with (
        open_room(a, room.slug, here) as local,
        open_room(b, room.slug, there) as remote,
        open_room(a, room.slug, reader_cookie, follow_resync=False) as reader,
    ):

        async def jam() -> None:  # each junk payload costs a hub's receive loop half a second
            for _ in range(20):
                await junk.publish(a.room_channel(room.slug), b"not a channel-layer payload")
                await asyncio.sleep(0.1)

        jamming = asyncio.create_task(jam())
        for n in range(10):  # remote then local: process a sees its own later number before the remote one
            await remote.send_message(f"remote {n}")
            await asyncio.sleep(0.05)
            await local.send_message(f"local {n}")
            await asyncio.sleep(0.05)
        await jamming
        await junk.aclose()
        try:
            await reader.wait_for_id(20, timeout=15)
        finally:
            log = a.log_text()
        assert reader.ids() == list(range(1, 21))
        assert reader.resyncs == 0, "the hub gave up and asked the member to resync"
        assert "back-fill failed" not in log, log[-2000:]
