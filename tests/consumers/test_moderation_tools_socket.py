"""`mod` frames on the room socket: what the room, the target and the chair each see."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from accounts.models import Role
from moderation.models import AuditEntry
from tests.consumers.conftest import cookie_for
from tests.consumers.test_room_socket import close_code_of, join
from tests.factories import make_room, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]


async def mod(client, action: str, target="", **extra) -> None:  # type: ignore[no-untyped-def]
    await client.raw(json.dumps({"type": "mod", "action": action, "target": target, "reason": "test", **extra}))


@database_sync_to_async
def chaired_room():  # type: ignore[no-untyped-def]
    room = make_room()
    chair = make_user(handle="Meena Lamp")
    room.chairs.add(chair)
    return room, chair


async def test_a_member_or_guest_gets_not_allowed_and_nothing_happens():
    room = await database_sync_to_async(make_room)()
    member, _ = await join(room.slug, await cookie_for(await database_sync_to_async(make_user)(handle="Plain Member")))
    guest, _ = await join(room.slug, await cookie_for(guest_handle="Guest Person"))
    for client in (member, guest):
        await mod(client, "lock")
        assert (await client.frame_of("error"))["code"] == "not_allowed"
        await mod(client, "mute", "Plain Member", minutes=5)
        assert (await client.frame_of("error"))["code"] == "not_allowed"
    assert await database_sync_to_async(AuditEntry.objects.count)() == 0
    await member.close()
    await guest.close()


async def test_a_chair_mutes_someone_who_is_told_privately_and_can_no_longer_share():
    room, chair_user = await chaired_room()
    chair, _ = await join(room.slug, await cookie_for(chair_user))
    noisy, _ = await join(room.slug, await cookie_for(await database_sync_to_async(make_user)(handle="Noisy One")))
    await mod(chair, "mute", "Noisy One", minutes=5)
    assert (await chair.frame_of("notice"))["code"] == "mod_done"
    told = await noisy.frame_of("notice")
    assert told["code"] == "muted" and "5 minutes" in told["text"]
    await noisy.send("still talking")
    assert (await noisy.frame_of("error"))["code"] == "muted"
    assert await chair.nothing_more("notice")  # the room isn't told who was muted
    await mod(chair, "unmute", "Noisy One")
    assert (await noisy.frame_of("notice"))["code"] == "unmuted"
    await chair.close()
    await noisy.close()


async def test_deleting_a_message_updates_everyones_view_once():
    room, chair_user = await chaired_room()
    chair, _ = await join(room.slug, await cookie_for(chair_user))
    author, _ = await join(room.slug, await cookie_for(guest_handle="Alice Lotus"))
    await author.send("something unkind")
    message_id = (await chair.frame_of("message"))["id"]
    await mod(chair, "delete", message_id)
    for client in (chair, author):
        assert await client.frame_of("deleted") == {"type": "deleted", "id": message_id}
        assert await client.nothing_more("deleted")
    late, welcome = await join(room.slug, await cookie_for(guest_handle="Bob Heron"))
    assert welcome["history"] == []  # gone from history too
    for c in (chair, author, late):
        await c.close()


async def test_holding_hides_a_message_from_peers_and_release_brings_it_back_in_place():
    room, chair_user = await chaired_room()
    chair, _ = await join(room.slug, await cookie_for(chair_user))
    author, _ = await join(room.slug, await cookie_for(guest_handle="Alice Lotus"))
    await author.send("a message to review")
    message_id = (await chair.frame_of("message"))["id"]
    await author.frame_of("message")
    await mod(chair, "hold", message_id)
    assert (await chair.frame_of("deleted")) == {"type": "deleted", "id": message_id, "held": True}
    own = await author.frame_of("message")
    assert own["id"] == message_id and own["held"] is True  # the author still sees it, marked held
    await mod(chair, "release", message_id)
    released = await chair.frame_of("message")
    assert released["id"] == message_id and released["body"] == "a message to review" and "held" not in released
    assert "held" not in await author.frame_of("message")
    await chair.close()
    await author.close()


async def test_remove_closes_only_their_sockets_in_this_room_with_4403():
    room, chair_user = await chaired_room()
    other_room = await database_sync_to_async(make_room)()
    chair, _ = await join(room.slug, await cookie_for(chair_user))
    cookie = await cookie_for(await database_sync_to_async(make_user)(handle="Noisy One"))
    here, _ = await join(room.slug, cookie)
    elsewhere, _ = await join(other_room.slug, cookie)
    await mod(chair, "remove", "Noisy One")
    assert await close_code_of(here) == 4403
    await elsewhere.raw('{"type": "ping"}')
    assert (await elsewhere.frame_of("pong")) == {"type": "pong"}
    await chair.raw('{"type": "ping"}')
    assert (await chair.frame_of("pong")) == {"type": "pong"}
    await chair.close()
    await elsewhere.close()


async def test_lock_and_slow_mode_are_announced_to_the_room():
    room, chair_user = await chaired_room()
    chair, _ = await join(room.slug, await cookie_for(chair_user))
    member, _ = await join(room.slug, await cookie_for(await database_sync_to_async(make_user)()))
    await mod(chair, "lock")
    assert (await member.frame_of("notice"))["code"] == "locked"
    await member.send("hello")
    assert (await member.frame_of("error"))["code"] == "locked"
    await mod(chair, "unlock")
    assert (await member.frame_of("notice"))["code"] == "unlocked"
    await mod(chair, "slow", seconds=60)
    assert "60 seconds" in (await member.frame_of("notice"))["text"]
    await member.send("one")
    await member.frame_of("message")
    await member.send("two")
    assert (await member.frame_of("error"))["code"] == "rate_limited"
    await chair.close()
    await member.close()


async def test_a_moderator_bans_from_the_fellowship_and_the_ban_is_audited():
    room = await database_sync_to_async(make_room)()
    moderator = await database_sync_to_async(make_user)(roles=(Role.MODERATOR.value,))
    mods, _ = await join(room.slug, await cookie_for(moderator))
    target, _ = await join(room.slug, await cookie_for(await database_sync_to_async(make_user)(handle="Noisy One")))
    await mod(mods, "ban", "Noisy One")
    assert await close_code_of(target) == 4403
    entry = await database_sync_to_async(AuditEntry.objects.get)(action="ban")
    assert entry.target_handle == "Noisy One" and entry.reason == "test"
    await mods.close()
