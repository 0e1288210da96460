"""The fan-out hub's ordering rules, with a fake database: in order, once, and never stuck on a gap."""

from __future__ import annotations

import asyncio

import pytest

from chat.broadcast import GAP_WAIT_SECONDS, Hub, Member
from chat.protocol import EVENT_ROOM_FRAME


class FakeStore:
    """Stands in for the message table: seq -> (peers' text, author's text, author tag)."""

    def __init__(self, rows: dict[int, str]) -> None:
        self.rows = rows

    async def fetch_after(self, room_id: int, after: int, limit: int):
        found = sorted(seq for seq in self.rows if seq > after)[:limit]
        return [(seq, self.rows[seq], None, "someone") for seq in found]

    async def heads(self, room_ids):
        return {room_id: max(self.rows, default=0) for room_id in room_ids}


def member(conn_id: str, last_id: int, inbox: list[str], author: str = "tag") -> Member:
    async def write(text: str) -> None:
        inbox.append(text)

    async def close(code: int) -> None:
        inbox.append(f"closed {code}")

    return Member(conn_id=conn_id, room="r", author=author, handle=conn_id, last_id=last_id, write=write, close=close)


def event(seq: int) -> dict:
    return {"type": EVENT_ROOM_FRAME, "room": "r", "seq": seq, "text": f"m{seq}", "own": None, "author": "x"}


@pytest.fixture
async def hub():
    store = FakeStore({})
    hub = Hub(fetch_after=store.fetch_after, room_heads=store.heads)
    hub.store = store
    yield hub
    await hub.stop()


def texts(inbox: list[str]) -> list[str]:
    return [t for t in inbox if t.startswith("m")]


async def test_out_of_order_events_are_delivered_in_order(hub):
    inbox: list[str] = []
    await hub.join(member("a", 0, inbox), room_id=1)
    await hub.handle_event(event(2))
    await hub.handle_event(event(1))
    assert texts(inbox) == ["m1", "m2"]


async def test_a_lost_event_is_fetched_from_the_database_after_a_short_wait(hub):
    hub.store.rows = {1: "m1", 2: "m2", 3: "m3"}
    inbox: list[str] = []
    await hub.join(member("a", 0, inbox), room_id=1)
    await hub.handle_event(event(1))
    await hub.handle_event(event(3))  # 2 never arrives on the fast path
    assert texts(inbox) == ["m1"]
    await asyncio.sleep(GAP_WAIT_SECONDS + 0.2)
    assert texts(inbox) == ["m1", "m2", "m3"]


async def test_numbers_purged_from_the_database_are_skipped_not_waited_for(hub):
    hub.store.rows = {4: "m4"}  # 1-3 are past the retention window
    inbox: list[str] = []
    await hub.join(member("a", 0, inbox), room_id=1)
    await hub.handle_event(event(4))
    await asyncio.sleep(GAP_WAIT_SECONDS + 0.2)
    assert texts(inbox) == ["m4"]


async def test_duplicates_are_never_written_twice(hub):
    inbox: list[str] = []
    await hub.join(member("a", 0, inbox), room_id=1)
    for seq in (1, 1, 2, 1, 2):
        await hub.handle_event(event(seq))
    assert texts(inbox) == ["m1", "m2"]


async def test_a_member_who_joined_behind_is_back_filled_then_kept_live(hub):
    hub.store.rows = {1: "m1", 2: "m2", 3: "m3"}
    first: list[str] = []
    late: list[str] = []
    await hub.join(member("a", 2, first), room_id=1)
    await hub.handle_event(event(3))
    await hub.join(member("b", 1, late), room_id=1)  # its history ended at 1: it missed 2 and 3
    await asyncio.sleep(0.1)
    hub.store.rows[4] = "m4"
    await hub.handle_event(event(4))
    await asyncio.sleep(0.1)
    assert texts(first) == ["m3", "m4"]
    assert texts(late) == ["m2", "m3", "m4"]


async def test_the_author_gets_their_own_copy_and_others_the_shared_one(hub):
    mine: list[str] = []
    theirs: list[str] = []
    await hub.join(member("a", 0, mine, author="me"), room_id=1)
    await hub.join(member("b", 0, theirs, author="you"), room_id=1)
    await hub.handle_event({**event(1), "text": "m-shared", "own": "m-own", "author": "me"})
    assert texts(mine) == ["m-own"] and texts(theirs) == ["m-shared"]


async def test_a_held_message_reaches_only_its_author_and_moves_everyone_on(hub):
    mine: list[str] = []
    theirs: list[str] = []
    await hub.join(member("a", 0, mine, author="me"), room_id=1)
    await hub.join(member("b", 0, theirs, author="you"), room_id=1)
    await hub.handle_event({**event(1), "text": None, "own": "m-held", "author": "me"})
    await hub.handle_event(event(2))
    assert texts(mine) == ["m-held", "m2"] and texts(theirs) == ["m2"]


async def test_a_member_who_stops_reading_is_paused_then_back_filled_without_a_gap(hub):
    from chat import broadcast

    hub.store.rows = {n: f"m{n}" for n in range(1, 6)}
    backlog = {"bytes": 0}
    slow: list[str] = []
    reader = member("slow", 0, slow)
    reader.pending = lambda: backlog["bytes"]
    others: list[str] = []
    await hub.join(reader, room_id=1)
    await hub.join(member("ok", 0, others), room_id=1)
    await hub.handle_event(event(1))
    backlog["bytes"] = broadcast.SLOW_MEMBER_BYTES + 1  # the reader stops reading
    for seq in (2, 3, 4):
        await hub.handle_event(event(seq))
    assert texts(slow) == ["m1"] and reader.lagging
    assert texts(others) == ["m1", "m2", "m3", "m4"]  # everyone else is unaffected
    backlog["bytes"] = 0  # it drains
    await hub._tick()
    await asyncio.sleep(0.2)
    await hub.handle_event(event(5))
    await asyncio.sleep(0.1)
    assert texts(slow) == ["m1", "m2", "m3", "m4", "m5"]


async def test_many_paused_members_share_their_back_fill_reads_and_leave_the_database_room(hub):
    from chat import broadcast

    hub.store.rows = {n: f"m{n}" for n in range(1, 8)}
    reads = {"calls": 0, "at_once": 0, "most_at_once": 0}
    plain_fetch = hub.store.fetch_after

    async def slow_fetch(room_id, after, limit):  # a database thread that takes a while per read
        reads["calls"] += 1
        reads["at_once"] += 1
        reads["most_at_once"] = max(reads["most_at_once"], reads["at_once"])
        await asyncio.sleep(0.02)
        reads["at_once"] -= 1
        return await plain_fetch(room_id, after, limit)

    hub._fetch_after = slow_fetch
    backlog = {"bytes": 0}
    inboxes: list[list[str]] = []
    for n in range(30):  # a burst pauses a whole room at the same message
        inbox: list[str] = []
        inboxes.append(inbox)
        reader = member(f"slow{n}", 0, inbox)
        reader.pending = lambda: backlog["bytes"]
        await hub.join(reader, room_id=1)
    await hub.handle_event(event(1))
    backlog["bytes"] = broadcast.SLOW_MEMBER_BYTES + 1
    for seq in range(2, 8):
        await hub.handle_event(event(seq))
    backlog["bytes"] = 0
    await hub._tick()
    await asyncio.sleep(0.5)
    assert all(texts(inbox) == [f"m{n}" for n in range(1, 8)] for inbox in inboxes)  # nobody missed one
    assert reads["most_at_once"] <= broadcast.BACKFILL_READERS  # handshakes and sends still get the thread
    assert reads["calls"] <= 3  # thirty members, one read of the rows they all missed (and a check it's all)


def test_a_text_frame_is_encoded_once_as_rfc_6455_says():
    from chat.transport import encode_text_frame

    assert encode_text_frame("hi") == b"\x81\x02hi"
    medium = encode_text_frame("é" * 100)  # 200 bytes of UTF-8: a 16-bit length
    assert medium[:4] == b"\x81\x7e\x00\xc8" and len(medium) == 204
    large = encode_text_frame("a" * 70000)  # a 64-bit length
    assert large[:2] == b"\x81\x7f" and int.from_bytes(large[2:10], "big") == 70000


async def test_members_with_a_direct_writer_get_the_same_frame_bytes(hub):
    written: list[bytes] = []
    inbox: list[str] = []
    fast = member("fast", 0, inbox)
    fast.write_frame = lambda frame: written.append(frame) or True
    slow_path: list[str] = []
    await hub.join(fast, room_id=1)
    await hub.join(member("ordinary", 0, slow_path), room_id=1)
    await hub.handle_event(event(1))
    from chat.transport import encode_text_frame

    assert written == [encode_text_frame("m1")]
    assert texts(slow_path) == ["m1"]


async def test_joining_tells_the_newcomer_who_is_here_without_a_frame_to_everyone(hub):
    first: list[str] = []
    await hub.join(member("a", 0, first), room_id=1)
    await asyncio.sleep(0.5)  # let the debounced update settle
    before = len([t for t in first if '"presence"' in t])
    newcomer: list[str] = []
    await hub.join(member("b", 0, newcomer, author="other"), room_id=1)
    assert any('"count":2' in t for t in newcomer)  # at once
    assert len([t for t in first if '"presence"' in t]) == before  # not yet: debounced
    await asyncio.sleep(0.5)
    assert any('"count":2' in t for t in first)


@pytest.mark.timeout(10)
async def test_a_missing_message_arriving_live_while_the_database_is_read_for_it_leaves_the_hub_working(hub):
    hub.store.rows = {1: "m1", 2: "m2", 3: "m3"}
    reading = asyncio.Event()
    answer = asyncio.Event()
    fetch = hub.store.fetch_after

    async def slow_fetch(room_id, after, limit):
        rows = await fetch(room_id, after, limit)
        reading.set()
        await answer.wait()  # the database answers only after the live copy has come in
        return rows

    hub._fetch_after = slow_fetch
    inbox: list[str] = []
    await hub.join(member("a", 0, inbox), room_id=1)
    await hub.handle_event(event(1))
    await hub.handle_event(event(3))  # 2 is late: after a short wait the hub reads the database for it
    await asyncio.wait_for(reading.wait(), GAP_WAIT_SECONDS + 2)
    await hub.handle_event(event(2))  # ...and then it arrives live after all
    answer.set()
    await asyncio.sleep(0.1)  # the event loop runs again: the back-fill did not spin on a row already delivered
    assert texts(inbox) == ["m1", "m2", "m3"]
    assert hub.rooms["r"].gap_task is None and not hub.rooms["r"].pending
    await hub.handle_event(event(4))
    assert texts(inbox) == ["m1", "m2", "m3", "m4"]
