"""The census itself, and the protocol's vocabulary: no read receipts, typing indicators or "last seen".

The plugin (tests/privacy/census.py) checks every payload of the run; these tests prove it would notice a
leak (a detector that finds nothing proves nothing), and that a whole meeting's frames carry no field that
says who read what, who is typing, or when someone was last seen.
"""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from chat import protocol
from tests.consumers.conftest import cookie_for
from tests.consumers.test_room_socket import join
from tests.factories import make_room, make_user
from tests.privacy.census import TRACKING, Census


def secrets_census() -> Census:
    census = Census()
    census.remember_user("wren_meadow_77", "wren.meadow@example.org")
    return census


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ('{"type": "message", "handle": "Wren", "note": "mail wren.meadow@example.org"}', "an email address"),
        ('{"type": "presence", "handles": ["wren_meadow_77"]}', "a username"),
        ('{"type": "notice", "text": "from 203.0.113.9 today"}', "an IPv4 address"),
        ('{"type": "notice", "text": "from 2001:db8::7 today"}', "an IPv6 address"),
        ('{"type": "flag", "who": "u:42"}', "an author key"),
        ('{"type": "flag", "who": "g:7"}', "an author key"),
        ('{"type": "flag", "who": "x:9f3a1c0b2d"}', "an author key"),
        ('{"type": "welcome", "you": {"handle": "Wren", "user_id": 3}}', "a field named 'user_id'"),
        ('{"type": "welcome", "you": {"email": ""}}', "a field named 'email'"),
        ('{"type": "x", "author_key": "", "ip": ""}', "a field named 'author_key'"),
        ("<p>Signed in as wren_meadow_77</p>", "a username"),
    ],
)
def test_the_census_notices_each_kind_of_private_value_and_never_prints_it(payload: str, kind: str) -> None:
    kind_of_payload = "html" if payload.startswith("<") else "json"
    findings = secrets_census().findings_in(payload, kind=kind_of_payload, where="here")
    assert kind in {f.kind for f in findings}
    for finding in findings:
        for secret in ("wren.meadow@example.org", "wren_meadow_77", "203.0.113.9", "2001:db8::7", "x:9f3a1c0b2d"):
            assert secret not in str(finding)


@pytest.mark.parametrize(
    "payload",
    [
        '{"type": "message", "id": 12, "handle": "Calm River 42", "sent_at": "2026-11-21T08:26:49.123Z"}',
        '{"type": "welcome", "room": {"closes_at": "2026-11-21T10:30:00+05:30"}, "last_id": 7}',
        '{"type": "message", "body": "write to me: me@example.org or 10.0.0.1", "html": "me@example.org"}',
        '<a href="http://127.0.0.1:8000/rooms/x/">Join</a> <style>a::before{content:""}</style> 12:30',
        '{"type": "queue", "handles": ["Tester B1x"], "timer": "00:05:00"}',
    ],
)
def test_the_census_leaves_ordinary_payloads_alone(payload: str) -> None:
    """Times, handles, the site's own links, and what members chose to type themselves are not findings."""
    kind = "html" if payload.startswith("<") else "json"
    assert secrets_census().findings_in(payload, kind=kind, where="here") == []


def test_the_census_is_running_for_this_session() -> None:
    from channels.testing import WebsocketCommunicator
    from django.test import Client

    assert getattr(WebsocketCommunicator.receive_output, "_census", False)
    assert getattr(Client.request, "_census", False)


def test_no_frame_type_or_code_of_the_protocol_tracks_reading_typing_or_last_seen() -> None:
    names = [m.value for enum in (protocol.ClientType, protocol.ServerType, protocol.NoticeCode) for m in enum]
    assert [n for n in names if TRACKING.search(n)] == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("hub_cleanup")
async def test_a_whole_meeting_sends_no_read_receipt_typing_indicator_or_last_seen() -> None:
    room = await database_sync_to_async(make_room)()
    member = await database_sync_to_async(make_user)(handle="Quiet Harbour")
    alice, welcome = await join(room.slug, await cookie_for(member))
    bob, _ = await join(room.slug, await cookie_for(guest_handle="Open Sky"))
    frames = [welcome]
    await alice.send("Day 90 today.")
    frames.append(await bob.frame_of("message"))
    await bob.raw(json.dumps({"type": "report", "message_id": 1, "reason": "just checking"}))
    await bob.raw(json.dumps({"type": "ping"}))
    frames.append(await bob.frame_of("pong"))
    await bob.close()
    frames.append(await alice.frame_of("presence"))
    await alice.raw(json.dumps({"type": "resume", "after": 0}))
    frames.append(await alice.frame_of("resumed"))
    await alice.close()

    def names(value, prefix=""):  # type: ignore[no-untyped-def]
        if isinstance(value, dict):
            for key, item in value.items():
                yield f"{prefix}{key}"
                yield from names(item, f"{prefix}{key}.")
        elif isinstance(value, list):
            for item in value:
                yield from names(item, prefix)

    fields = {name for frame in frames for name in names(frame)}
    assert [f for f in fields if TRACKING.search(f)] == []
    presence = frames[3]
    assert set(presence) == {"type", "count", "handles"} and presence["handles"] == ["Quiet Harbour"]
    # A message says who wrote it and when it was sent; nothing about who has read it.
    assert set(frames[1]) == {"type", "id", "handle", "body", "html", "sent_at"}
