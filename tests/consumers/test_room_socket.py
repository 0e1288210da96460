"""The room socket, end to end in one process: real sessions, real database, the configured channel layer."""

from __future__ import annotations

import asyncio
import importlib
import json
import uuid

import pytest
from channels.db import database_sync_to_async
from django.test import override_settings

from accounts.models import Role, User
from chat.models import Message
from moderation.models import Restriction
from rooms.models import Access
from tests.consumers.conftest import cookie_for, open_socket
from tests.factories import make_room, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]


async def join(slug: str, cookie: str):
    client, connected, _ = await open_socket(f"/ws/rooms/{slug}/", cookie)
    assert connected
    welcome = await client.frame_of("welcome")
    return client, welcome


async def test_two_guests_talk_in_real_time():
    room = await database_sync_to_async(make_room)()
    alice, welcome = await join(room.slug, await cookie_for(guest_handle="Alice Lotus"))
    bob, _ = await join(room.slug, await cookie_for(guest_handle="Bob Heron"))
    assert welcome["you"] == {"handle": "Alice Lotus", "role": "guest"}
    assert welcome["room"]["slug"] == room.slug and welcome["history"] == []

    client_id = await alice.send("Hello, I'm new here <b>hi</b>")
    to_bob = await bob.frame_of("message")
    to_alice = await alice.frame_of("message")
    assert to_bob["handle"] == "Alice Lotus" and to_bob["body"] == "Hello, I'm new here <b>hi</b>"
    assert "&lt;b&gt;" in to_bob["html"]
    assert "client_id" not in to_bob  # only the sender's own copy carries it
    assert to_alice["client_id"] == client_id and to_alice["id"] == to_bob["id"] == 1
    await alice.close()
    await bob.close()


async def test_presence_lists_who_is_here_by_handle_only():
    room = await database_sync_to_async(make_room)()
    alice, _ = await join(room.slug, await cookie_for(guest_handle="Alice Lotus"))
    bob, _ = await join(room.slug, await cookie_for(guest_handle="Bob Heron"))
    for _ in range(10):
        presence = await alice.frame_of("presence")
        if presence["count"] == 2:
            break
    assert presence == {"type": "presence", "count": 2, "handles": ["Alice Lotus", "Bob Heron"]}
    await bob.close()
    for _ in range(10):
        presence = await alice.frame_of("presence")
        if presence["count"] == 1:
            break
    assert presence["handles"] == ["Alice Lotus"]
    await alice.close()


async def test_sending_the_same_client_id_twice_stores_one_message():
    room = await database_sync_to_async(make_room)()
    alice, _ = await join(room.slug, await cookie_for(guest_handle="Alice Lotus"))
    client_id = await alice.send("only once")
    first = await alice.frame_of("message")
    await alice.send("only once", client_id=client_id)
    again = await alice.frame_of("message")
    assert again["id"] == first["id"] and again["client_id"] == client_id
    assert await database_sync_to_async(Message.objects.filter(room=room).count)() == 1
    await alice.close()


async def test_sends_from_many_sockets_at_once_are_stored_together_and_everyone_sees_one_order(settings):
    settings.SAATHI_SEND_RATE = "100/second"
    room = await database_sync_to_async(make_room)()
    people = [(await join(room.slug, await cookie_for(guest_handle=f"Sender {n}")))[0] for n in range(5)]
    sent = await asyncio.gather(*(person.send(f"note {n}-{k}") for n, person in enumerate(people) for k in range(4)))
    seen = []
    for person in people:
        frames = [await person.frame_of("message") for _ in range(20)]
        seen.append([(f["id"], f["body"]) for f in frames])
        own = {f["client_id"] for f in frames if "client_id" in f}
        assert len(own) == 4 and own <= set(sent)  # each sender's own four came back as theirs
    assert [number for number, _ in seen[0]] == list(range(1, 21))  # numbered 1..20, none twice, none missing
    assert all(order == seen[0] for order in seen)  # the same order on every screen
    assert await database_sync_to_async(Message.objects.filter(room=room).count)() == 20
    for person in people:
        await person.close()


STORE_BATCHES: list[list[str]] = []
SLOW_STORE = "tests.consumers.test_room_socket.slow_store"


def store_batches() -> list[list[str]]:
    """The batches slow_store saw (import_string loads this file under its package name: a second copy)."""
    return importlib.import_module("tests.consumers.test_room_socket").STORE_BATCHES


def slow_store(sends):
    """chat.services.post_messages, a fifth of a second slower per batch (a busy database), noting each batch."""
    import time

    from chat.services import post_messages

    STORE_BATCHES.append([send.body for send in sends])
    time.sleep(0.2)
    return post_messages(sends)


@override_settings(SAATHI_SEND_STORE=SLOW_STORE)
async def test_a_members_quick_messages_do_not_wait_for_each_others_round_trip_and_stay_in_order():
    store_batches().clear()
    room = await database_sync_to_async(make_room)()
    alice, _ = await join(room.slug, await cookie_for(guest_handle="Alice Lotus"))
    for body in ("I made it", "to day 30", "thank you all"):
        await alice.send(body)
    frames = [await alice.frame_of("message") for _ in range(3)]
    assert [(f["id"], f["body"]) for f in frames] == [(1, "I made it"), (2, "to day 30"), (3, "thank you all")]
    # The later two were read while the first was being stored, and were stored together after it (or with it),
    # not one database round trip after another.
    stored_in_order = [body for batch in store_batches() for body in batch]
    assert len(store_batches()) < 3 and stored_in_order == ["I made it", "to day 30", "thank you all"]
    await alice.close()


@override_settings(SAATHI_SEND_STORE=SLOW_STORE)
async def test_a_sender_with_too_many_unanswered_sends_is_read_only_as_they_are_answered(monkeypatch):
    from chat import consumers

    monkeypatch.setattr(consumers, "SENDS_IN_FLIGHT", 2)
    store_batches().clear()
    room = await database_sync_to_async(make_room)()
    alice, _ = await join(room.slug, await cookie_for(guest_handle="Alice Lotus"))
    for n in range(6):
        await alice.send(f"line {n}")
    frames = [await alice.frame_of("message", timeout=5) for _ in range(6)]
    assert [f["body"] for f in frames] == [f"line {n}" for n in range(6)]  # every one stored, in order
    assert max(len(batch) for batch in store_batches()) <= 2  # never more than two of hers waiting at once
    await alice.close()


async def test_an_overloaded_process_answers_busy_at_once_and_the_retry_is_stored_once():
    room = await database_sync_to_async(make_room)()
    alice, _ = await join(room.slug, await cookie_for(guest_handle="Alice Lotus"))
    with override_settings(SAATHI_MAX_SENDS_WAITING=0):  # as if this many sends already waited for the database
        client_id = await alice.send("are you there?")
        refusal = await alice.frame_of("error")
    assert refusal["code"] == "unavailable" and refusal["client_id"] == client_id  # retryable, nothing stored
    assert await database_sync_to_async(Message.objects.filter(room=room).count)() == 0
    await alice.send("are you there?", client_id=client_id)  # the browser retries with the same client_id
    stored = await alice.frame_of("message")
    assert stored["client_id"] == client_id and stored["body"] == "are you there?"
    assert await database_sync_to_async(Message.objects.filter(room=room).count)() == 1
    await alice.close()


async def test_a_member_who_drops_resumes_with_no_gap_and_no_duplicate():
    room = await database_sync_to_async(make_room)()
    alice_cookie = await cookie_for(guest_handle="Alice Lotus")
    alice, _ = await join(room.slug, alice_cookie)
    bob, _ = await join(room.slug, await cookie_for(guest_handle="Bob Heron"))
    await bob.send("one")
    seen = (await alice.frame_of("message"))["id"]
    assert (await bob.frame_of("message"))["body"] == "one"  # bob's own copy, so each wait below is for its send
    await alice.close()
    for body in ("two", "three", "four"):
        await bob.send(body)
        assert (await bob.frame_of("message"))["body"] == body  # stored before alice comes back
    alice, connected, _ = await open_socket(f"/ws/rooms/{room.slug}/?after={seen}", alice_cookie)
    assert connected
    await alice.frame_of("welcome")
    missed = [await alice.frame_of("message") for _ in range(3)]
    resumed = await alice.frame_of("resumed")
    assert [m["body"] for m in missed] == ["two", "three", "four"]
    assert [m["id"] for m in missed] == [2, 3, 4] and resumed["last_id"] == 4
    await bob.send("five")
    assert (await alice.frame_of("message"))["id"] == 5
    assert await alice.nothing_more()
    await alice.close()
    await bob.close()


async def test_resume_frame_replays_after_an_id_then_says_resumed():
    room = await database_sync_to_async(make_room)()
    alice, _ = await join(room.slug, await cookie_for(guest_handle="Alice Lotus"))
    for body in ("a", "b", "c"):
        await alice.send(body)
        await alice.frame_of("message")
    await alice.raw(json.dumps({"type": "resume", "after": 1}))
    replay = [await alice.frame_of("message"), await alice.frame_of("message")]
    assert [m["body"] for m in replay] == ["b", "c"]
    assert (await alice.frame_of("resumed"))["last_id"] == 3
    await alice.close()


async def test_welcome_carries_recent_history_oldest_first():
    room = await database_sync_to_async(make_room)()
    alice, _ = await join(room.slug, await cookie_for(guest_handle="Alice Lotus"))
    for body in ("first", "second"):
        await alice.send(body)
        await alice.frame_of("message")
    bob, welcome = await join(room.slug, await cookie_for(guest_handle="Bob Heron"))
    assert [m["body"] for m in welcome["history"]] == ["first", "second"]
    assert welcome["last_id"] == 2
    assert all("client_id" not in m for m in welcome["history"])
    await alice.close()
    await bob.close()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{broken", "invalid"),
        ('{"type": "send", "body": "x\\u0000y", "client_id": "' + str(uuid.uuid4()) + '"}', "invalid"),
        ('{"type": "send", "body": "' + "a" * 2001 + '", "client_id": "' + str(uuid.uuid4()) + '"}', "too_long"),
        ("x" * 9000, "too_long"),
        ('{"type": "nope"}', "invalid"),
        ('{"type": "send", "body": "\\ud800", "client_id": "' + str(uuid.uuid4()) + '"}', "invalid"),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_usable(raw, code):
    room = await database_sync_to_async(make_room)()
    alice, _ = await join(room.slug, await cookie_for(guest_handle="Alice Lotus"))
    await alice.raw(raw)
    error = await alice.frame_of("error")
    assert error["code"] == code and error["detail"]
    await alice.raw('{"type": "ping"}')
    assert (await alice.frame_of("pong")) == {"type": "pong"}
    assert await database_sync_to_async(Message.objects.count)() == 0
    await alice.close()


async def test_forged_handle_and_room_fields_are_ignored():
    room = await database_sync_to_async(make_room)()
    other = await database_sync_to_async(make_room)()
    alice, _ = await join(room.slug, await cookie_for(guest_handle="Alice Lotus"))
    frame = {"type": "send", "body": "hi", "client_id": str(uuid.uuid4()), "handle": "Moderator", "room": other.slug}
    await alice.raw(json.dumps(frame))
    message = await alice.frame_of("message")
    assert message["handle"] == "Alice Lotus"
    stored = await database_sync_to_async(Message.objects.get)()
    assert stored.room_id == room.id
    await alice.close()


async def test_a_foreign_origin_is_refused_at_the_handshake():
    room = await database_sync_to_async(make_room)()
    cookie = await cookie_for(guest_handle="Alice Lotus")
    for origin in [
        (b"origin", b"http://evil.example"),
        (b"origin", b"http://127.0.0.1.evil.example"),
        (b"origin", b"null"),
        None,
    ]:
        _, connected, _ = await open_socket(f"/ws/rooms/{room.slug}/", cookie, origin=origin)
        assert not connected


async def close_code_of(client) -> int:
    output = None
    for _ in range(10):
        output = await client.ws.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            return output["code"]
    raise AssertionError(output)


async def test_no_session_closes_4401():
    room = await database_sync_to_async(make_room)()
    client, connected, _ = await open_socket(f"/ws/rooms/{room.slug}/", None)
    assert connected
    assert (await client.frame())["type"] == "error"
    assert await close_code_of(client) == 4401


async def test_unknown_room_closes_4404():
    cookie = await cookie_for(guest_handle="Alice Lotus")
    client, _, _ = await open_socket("/ws/rooms/no-such-room/", cookie)
    assert (await client.frame())["code"] == "not_found"
    assert await close_code_of(client) == 4404


@pytest.mark.parametrize(
    ("access", "who", "code"),
    [
        (Access.CLOSED, "guest", 4401),
        (Access.CLOSED, "family", 4403),
        (Access.FAMILY, "member", 4403),
        (Access.WOMEN, "member", 4403),
        (Access.PRIVATE, "member", 4404),  # a private room's existence is private (docs/access-control.md)
        (Access.FAMILY, "guest", 4401),
    ],
)
async def test_access_rules_are_enforced_at_the_handshake(access, who, code):
    room = await database_sync_to_async(make_room)(access=access)
    if who == "guest":
        cookie = await cookie_for(guest_handle="Guest Person")
    else:
        kind = User.Kind.FAMILY if who == "family" else User.Kind.RECOVERY
        cookie = await cookie_for(await database_sync_to_async(make_user)(kind=kind))
    client, _, _ = await open_socket(f"/ws/rooms/{room.slug}/", cookie)
    error = await client.frame()
    assert error["type"] == "error" and error["detail"]
    assert await close_code_of(client) == code


@pytest.mark.parametrize(
    ("access", "kind", "extra"),
    [
        (Access.CLOSED, User.Kind.RECOVERY, {}),
        (Access.FAMILY, User.Kind.FAMILY, {}),
        (Access.WOMEN, User.Kind.RECOVERY, {"attests_woman": True}),
    ],
)
async def test_the_right_people_get_in(access, kind, extra):
    room = await database_sync_to_async(make_room)(access=access)
    user = await database_sync_to_async(make_user)(kind=kind, **extra)
    client, welcome = await join(room.slug, await cookie_for(user))
    assert welcome["you"]["handle"] == user.handle
    await client.close()


async def test_a_banned_member_is_refused_4403():
    room = await database_sync_to_async(make_room)()
    user = await database_sync_to_async(make_user)()
    await database_sync_to_async(Restriction.objects.create)(
        kind=Restriction.Kind.BAN, author_key=f"u:{user.pk}", created_by_key="u:0"
    )
    client, _, _ = await open_socket(f"/ws/rooms/{room.slug}/", await cookie_for(user))
    await client.frame()
    assert await close_code_of(client) == 4403


async def test_staff_may_enter_any_room():
    room = await database_sync_to_async(make_room)(access=Access.FAMILY)
    moderator = await database_sync_to_async(make_user)(roles=(Role.MODERATOR.value,))
    client, welcome = await join(room.slug, await cookie_for(moderator))
    assert welcome["you"]["role"] == "moderator"
    await client.close()


@override_settings(SAATHI_SEND_RATE="3/minute", SAATHI_FLOOD_CLOSE_AFTER=4)
async def test_flooding_is_rate_limited_then_disconnected():
    room = await database_sync_to_async(make_room)()
    alice, _ = await join(room.slug, await cookie_for(guest_handle="Alice Lotus"))
    for n in range(3):
        await alice.send(f"message {n}")
        await alice.frame_of("message")
    refused = await alice.send("one too many")
    error = await alice.frame_of("error")
    assert error["code"] == "rate_limited" and error["client_id"] == refused
    for _ in range(3):
        await alice.send("still flooding")
    assert await close_code_of(alice) == 4429
    assert await database_sync_to_async(Message.objects.count)() == 3


@override_settings(SAATHI_MAX_SOCKETS_PER_MEMBER=2)
async def test_a_member_may_hold_only_a_few_sockets():
    room = await database_sync_to_async(make_room)()
    cookie = await cookie_for(guest_handle="Alice Lotus")
    first, _ = await join(room.slug, cookie)
    second, _ = await join(room.slug, cookie)
    third, _, _ = await open_socket(f"/ws/rooms/{room.slug}/", cookie)
    assert (await third.frame())["code"] == "rate_limited"
    assert await close_code_of(third) == 4429
    await second.close()
    await asyncio.sleep(0.1)
    fourth, _ = await join(room.slug, cookie)  # a freed slot can be used again
    await first.close()
    await fourth.close()


async def test_a_muted_member_gets_a_muted_error_and_nothing_is_stored():
    room = await database_sync_to_async(make_room)()
    user = await database_sync_to_async(make_user)()
    await database_sync_to_async(Restriction.objects.create)(
        kind=Restriction.Kind.MUTE, author_key=f"u:{user.pk}", room=room, created_by_key="u:0"
    )
    client, _ = await join(room.slug, await cookie_for(user))
    await client.send("hello")
    assert (await client.frame_of("error"))["code"] == "muted"
    assert await database_sync_to_async(Message.objects.count)() == 0
    await client.close()


async def test_a_locked_room_refuses_members_but_not_staff():
    room = await database_sync_to_async(make_room)(locked=True)
    member, _ = await join(room.slug, await cookie_for(await database_sync_to_async(make_user)()))
    await member.send("hello")
    assert (await member.frame_of("error"))["code"] == "locked"
    moderator = await database_sync_to_async(make_user)(roles=(Role.MODERATOR.value,))
    staff, _ = await join(room.slug, await cookie_for(moderator))
    await staff.send("The room is locked for a moment.")
    assert (await member.frame_of("message"))["body"] == "The room is locked for a moment."
    await member.close()
    await staff.close()


async def test_resuming_past_purged_messages_skips_them_without_waiting():
    from datetime import timedelta

    from django.utils import timezone

    from chat.services import purge_expired_messages

    room = await database_sync_to_async(make_room)(retention_hours=24)
    alice_cookie = await cookie_for(guest_handle="Alice Lotus")
    alice, _ = await join(room.slug, alice_cookie)
    for body in ("old one", "old two", "new three"):
        await alice.send(body)
        await alice.frame_of("message")
    await alice.close()

    def age_and_purge() -> None:
        Message.objects.filter(room=room, seq__lte=2).update(created_at=timezone.now() - timedelta(days=2))
        purge_expired_messages(now=timezone.now())

    await database_sync_to_async(age_and_purge)()
    alice, connected, _ = await open_socket(f"/ws/rooms/{room.slug}/?after=0", alice_cookie)
    assert connected
    await alice.frame_of("welcome")
    assert (await alice.frame_of("message"))["body"] == "new three"
    assert (await alice.frame_of("resumed"))["last_id"] == 3
    await alice.close()
