# ruff: noqa: RUF001, RUF003  (look-alike letters are the point of this file)
"""Hostile frames in one process: the pure parser, the sanitiser, the handle rules, then the real consumer.

The parser (`chat.protocol.parse_client_frame`) is the oracle for the consumer test: whatever it refuses must
come back as exactly one `error` frame with the same code, whatever it accepts must be stored exactly as it
cleaned it. The consumer test runs with raised rate limits (SAATHI_SEND_RATE="100000/minute",
SAATHI_FRAMES_PER_MINUTE=1000000) so it measures refusals of bad input, not throttling.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import string
import unicodedata
import uuid
from collections import Counter
from typing import Any

import pytest
from channels.db import database_sync_to_async
from hypothesis import Phase, example, given
from hypothesis import strategies as st

from accounts.handles import _INVISIBLE_OR_BIDI, STAFF_WORDS, HandleError, clean_handle, skeleton
from chat import protocol
from chat.protocol import MAX_BODY_CHARS, ErrorCode, ProtocolError, parse_client_frame
from chat.sanitize import render_html
from tests.fuzz import strategies as hs
from tests.fuzz.checks import BIDI, KNOWN_ERROR_CODES, expected_reply, html_problems, stored_text_problems
from tests.fuzz.conftest import fuzz_settings

# --- The parser -------------------------------------------------------------------------------------------

any_frame = st.one_of(hs.text_frames, hs.text_frames, hs.text_frames, hs.binary_frames, st.none())


@fuzz_settings(1000)
@given(frames=st.lists(any_frame, min_size=1, max_size=16))
@example(frames=['{"type":"resume","after":' + "9" * 5000 + "}", '{"type":"resume","after":NaN}', "[" * 5000])
@example(frames=[f'{{"type":"send","body":"\\ud800","client_id":"{uuid.uuid4()}"}}', b"\xff\xfe"])
def test_the_parser_refuses_with_a_protocol_error_or_returns_clean_text(frames, frame_count):
    # Each generated text frame is also parsed cut in half (a truncated read) and as a binary frame.
    variants = [
        v
        for raw in frames
        for v in ([raw, raw[: len(raw) // 2], raw.encode("utf-8", "surrogatepass")] if isinstance(raw, str) else [raw])
    ]
    frame_count["parser"] += len(variants)
    for raw in variants:
        try:
            request = parse_client_frame(raw)
        except ProtocolError as refusal:
            assert refusal.code in ErrorCode
            assert refusal.detail and json.loads(protocol.encode(refusal.frame()))["code"] == refusal.code.value
            continue
        if isinstance(request, protocol.SendRequest):
            assert 1 <= len(request.body) <= MAX_BODY_CHARS
            assert request.body == request.body.strip()
            assert "\r" not in request.body
            assert stored_text_problems(request.body) == []
            original = json.loads(raw)["body"]
            assert request.body == protocol.clean_text(original, field="message", max_chars=MAX_BODY_CHARS)
        elif isinstance(request, protocol.ReportRequest | protocol.ModRequest):
            texts = [request.reason] + ([request.target] if isinstance(request, protocol.ModRequest) else [])
            assert all(stored_text_problems(t) == [] for t in texts)
        elif isinstance(request, protocol.ResumeRequest):
            assert type(request.after) is int and 0 <= request.after <= 2**53


@fuzz_settings(300)
@given(body=hs.hostile_text)
def test_clean_text_trims_zalgo_and_direction_overrides_and_refuses_controls(body, frame_count):
    frame_count["clean_text"] += 1
    try:
        cleaned = protocol.clean_text(body, field="message", max_chars=MAX_BODY_CHARS)
    except ProtocolError as refusal:
        bad = any(
            unicodedata.category(c) == "Cs" or (unicodedata.category(c) == "Cc" and c not in "\n\t\r") for c in body
        )
        assert bad or refusal.code == ErrorCode.TOO_LONG
        return
    assert stored_text_problems(cleaned) == []
    run = 0
    for ch in cleaned:
        run = run + 1 if unicodedata.category(ch) in ("Mn", "Me") else 0
        assert run <= protocol.MAX_COMBINING_RUN
    for intact in hs.KEEP_INTACT:  # joiners in Indic scripts and emoji survive
        if intact in body and not any(c in BIDI for c in intact):
            assert intact in cleaned


# --- The sanitiser ------------------------------------------------------------------------------------------


@fuzz_settings(400)
@given(body=hs.storable_text)
@example(body="write to a@b.org")  # Django's urlize makes mailto: links, which nh3 strips to a bare <a>
@example(body='http://example.org/"onmouseover="alert(1)')
def test_rendered_html_holds_only_web_links_and_line_breaks(body, frame_count):
    frame_count["render_html"] += 1
    try:
        cleaned = protocol.clean_text(body, field="message", max_chars=MAX_BODY_CHARS)
    except ProtocolError:
        return
    html = render_html(cleaned)
    assert html_problems(html) == [], html


# --- Handles ----------------------------------------------------------------------------------------------


@fuzz_settings(400)
@given(raw=hs.handle_candidates)
def test_accepted_handles_have_no_hidden_characters_and_no_staff_look_alike(raw):
    try:
        handle = clean_handle(raw)
    except HandleError:
        return
    assert not any(ch in _INVISIBLE_OR_BIDI or ch in BIDI for ch in handle.display)
    assert not any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"} for ch in handle.display)
    assert 3 <= len(handle.display) <= 24 and handle.key == skeleton(handle.display)
    assert not any(skeleton(word) in handle.key for word in STAFF_WORDS), (raw, handle)


@fuzz_settings(400)
@given(raw=hs.disguised_staff_handles)
@example(raw="ɑdmin")  # U+0251 LATIN SMALL LETTER ALPHA
@example(raw="Moderatօr")  # U+0585 ARMENIAN SMALL LETTER OH
@example(raw="Cоunsellоr")  # Cyrillic о (already folded)
def test_look_alikes_of_staff_words_are_refused(raw):
    with pytest.raises(HandleError):
        clean_handle(raw)


# --- The real consumer: thousands of frames through sockets, services and the database ---------------------

BATCH_EXAMPLES = 60  # x SAATHI_FUZZ_SCALE; each example is one batch of 20-60 frames on the same sockets


def _fresh_handle(name: str) -> str:
    return f"{name} {''.join(secrets.choice(string.ascii_lowercase) for _ in range(8))}"


class _Room:
    """Two guests in one room: `alice` sends the hostile frames, `bob` watches what peers receive."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = False
        self.stored: dict[str, str] = {}  # client_id -> the body stored first under it
        self.sent = 0

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def open(self) -> None:
        from tests.consumers.conftest import cookie_for, open_socket
        from tests.factories import make_room

        self.room = await database_sync_to_async(make_room)(slug=f"fuzz-{uuid.uuid4().hex[:10]}")
        self.alice, connected, _ = await open_socket(
            f"/ws/rooms/{self.room.slug}/", await cookie_for(guest_handle=_fresh_handle("Alice"))
        )
        assert connected
        self.alice_handle = (await self.alice.frame_of("welcome"))["you"]["handle"]
        self.bob, connected, _ = await open_socket(
            f"/ws/rooms/{self.room.slug}/", await cookie_for(guest_handle=_fresh_handle("Bob"))
        )
        assert connected
        await self.bob.frame_of("welcome")
        self.ready = True

    async def close(self) -> None:
        from chat.broadcast import Hub

        for client in (self.alice, self.bob):
            await client.close()
        if Hub.current is not None:
            await Hub.current.stop()


@pytest.fixture
def fuzz_room(transactional_db, settings):
    settings.SAATHI_SEND_RATE = "100000/minute"
    settings.SAATHI_FRAMES_PER_MINUTE = 1_000_000
    room = _Room()
    yield room
    if room.ready:
        room.run(room.close())
    room.loop.close()


async def _one_batch(state: _Room, frames: list[str | bytes]) -> None:
    expected = [expected_reply(raw) for raw in frames]
    for raw in frames:  # raw ASGI events: send_to() can't send an empty frame, a client can
        key = "bytes" if isinstance(raw, bytes) else "text"
        await state.alice.ws.send_input({"type": "websocket.receive", key: raw})
    await state.alice.raw('{"type":"ping"}')  # the sentinel: its pong proves the socket is still usable
    state.sent += len(frames) + 1

    wanted: Counter[str] = Counter()
    for kind, cid, body in expected:
        if kind == "message":
            state.stored.setdefault(cid, body)
            wanted[cid] += 1
    # A `resume` with a small `after` legitimately replays stored messages (the author's own copies).
    replays_allowed = any(kind == "resumed" and detail < 2**40 for kind, detail, _ in expected)
    replies: list[dict[str, Any]] = []
    got: Counter[str] = Counter()
    pongs_needed = sum(1 for e in expected if e[0] == "pong") + 1
    while pongs_needed or any(got[cid] < n for cid, n in wanted.items()):
        try:
            frame = await state.alice.frame(timeout=10)
        except TimeoutError:
            missing = {cid: state.stored[cid][:300] for cid, n in wanted.items() if got[cid] < n}
            rows = await _stored_rows(state.room)
            missing = {cid: (body, [r for r in rows if r[0] == cid]) for cid, body in missing.items()}
            summary = [(kind, str(detail)[:60]) for kind, detail, _ in expected]
            raise AssertionError(
                f"no answer within 10 s: {pongs_needed} pong(s) and messages {missing} missing; "
                f"expected {summary}; got {[(f['type'], f.get('code')) for f in replies]}"
            ) from None
        if frame["type"] == "message":
            cid = frame.get("client_id")
            assert cid in state.stored, f"a message nobody sent: {frame}"
            got[cid] += 1
            assert got[cid] <= wanted[cid] or replays_allowed, f"an unexpected copy: {frame}"
            assert frame["body"] == state.stored[cid]
            assert frame["handle"] == state.alice_handle  # forged handle/role/room fields are ignored
            assert html_problems(frame["html"]) == [], frame["html"]
        elif frame["type"] in ("error", "pong", "resumed"):
            replies.append(frame)
            pongs_needed -= frame["type"] == "pong"
        # presence, notice, queue, support: other features; they may interleave

    controls = iter(replies)
    for (kind, detail, cid), raw in zip(expected, frames, strict=True):
        if kind == "message":
            continue
        if kind == "extension":  # answered by other apps: at most an error frame with a known code
            continue
        reply = next(controls)
        assert reply["type"] == kind, (raw if isinstance(raw, bytes) else raw[:300], reply, kind, detail)
        if kind == "error":
            assert reply["code"] == detail, (raw[:300], reply)
            assert reply.get("client_id") == cid
    rest = list(controls)
    assert rest[-1] == {"type": "pong"}
    assert all(f["type"] == "error" and f["code"] in KNOWN_ERROR_CODES for f in rest[:-1]), rest

    # What a peer sees: the same safe frames, without the author's client_id.
    while not await state.bob.ws.receive_nothing(timeout=0.01):
        frame = await state.bob.frame()
        if frame["type"] == "message":
            assert "client_id" not in frame and "held" not in frame
            assert frame["handle"] == state.alice_handle
            assert html_problems(frame["html"]) == []


@database_sync_to_async
def _stored_rows(room) -> list[tuple[str, str, str]]:
    from chat.models import Message

    return [(str(c), b, h) for c, b, h in Message.objects.filter(room=room).values_list("client_id", "body", "handle")]


def _no_resume_past_the_end(raw: str | bytes) -> str | bytes:
    """Turn a valid `resume` past any stored id into `after: 0` (see the BUG test below: it silences the socket)."""
    kind, after, _ = expected_reply(raw)
    if kind == "resumed" and after > 1000:
        return '{"type":"resume","after":0}'
    return raw


socket_frames = st.one_of(
    hs.text_frames,
    hs.text_frames,
    hs.text_frames,
    hs.text_frames,
    hs.binary_frames,
    st.builds(hs.dumps, hs.send_objects, st.booleans()),
).map(_no_resume_past_the_end)


# No shrinking: the sockets and the room carry state from one example to the next, so a shrunk example is
# not the one that failed. The assertion messages carry the offending frame instead.
@fuzz_settings(BATCH_EXAMPLES, phases=[Phase.explicit, Phase.generate])
@given(frames=st.lists(socket_frames, min_size=20, max_size=60))
def test_hostile_frames_through_the_real_consumer_get_one_answer_each_and_store_only_clean_text(
    fuzz_room, frame_count, frames
):
    if not fuzz_room.ready or fuzz_room.alice.ws.future.done():  # first example, or Hypothesis replaying a failure
        fuzz_room.run(fuzz_room.open())
    frame_count["consumer"] += len(frames)
    fuzz_room.run(_one_batch(fuzz_room, frames))

    rows = fuzz_room.run(_stored_rows(fuzz_room.room))
    assert len(rows) == len(fuzz_room.stored)
    for client_id, body, handle in rows:
        assert stored_text_problems(body) == [], (client_id, body[:200])
        assert body == fuzz_room.stored[client_id]
        assert handle == fuzz_room.alice_handle
        assert html_problems(render_html(body)) == []


@pytest.mark.django_db(transaction=True)
async def test_a_resume_past_the_newest_message_does_not_silence_the_socket(settings):
    from chat.broadcast import Hub
    from tests.consumers.conftest import cookie_for, open_socket
    from tests.factories import make_room

    room = await database_sync_to_async(make_room)(slug=f"fuzz-{uuid.uuid4().hex[:10]}")
    alice, connected, _ = await open_socket(
        f"/ws/rooms/{room.slug}/", await cookie_for(guest_handle=_fresh_handle("Alice"))
    )
    assert connected
    await alice.frame_of("welcome")
    try:
        await alice.raw('{"type":"resume","after":999999}')
        assert (await alice.frame_of("resumed"))["last_id"] <= 0  # the server should not echo an id it never issued
        client_id = await alice.send("still here?")
        mine = await alice.frame_of("message", timeout=3)
        assert mine["client_id"] == client_id
    finally:
        await alice.close()
        if Hub.current is not None:
            await Hub.current.stop()
