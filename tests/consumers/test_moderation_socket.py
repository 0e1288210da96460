"""The crisis path and moderation tools over real sockets: room sockets and /ws/moderation/, one process."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from accounts.models import Role
from moderation.models import Flag
from tests.consumers.conftest import cookie_for, open_socket
from tests.consumers.test_room_socket import close_code_of, join
from tests.factories import make_room, make_user
from tests.integration.test_moderation_helpers import counsellor, rota

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]

CRISIS = "I want to kill myself tonight, I have the pills ready"


async def staff_socket(user):  # type: ignore[no-untyped-def]
    client, connected, _ = await open_socket("/ws/moderation/", await cookie_for(user))
    assert connected
    welcome = await client.frame_of("welcome")
    return client, welcome


@database_sync_to_async
def on_call_counsellor():  # type: ignore[no-untyped-def]
    user = counsellor("Kabir C")
    rota(timezone.now(), primary=user)
    return user


async def test_a_crisis_message_pages_the_on_call_counsellor_and_offers_the_member_help_privately():
    room = await database_sync_to_async(make_room)()
    kabir = await on_call_counsellor()
    desk, welcome = await staff_socket(kabir)
    assert welcome["flags"] == [] and welcome["on_call"][0]["handle"] == "Kabir C"
    member = await database_sync_to_async(make_user)(handle="Asha Rain")
    asha, _ = await join(room.slug, await cookie_for(member))
    peer, _ = await join(room.slug, await cookie_for(guest_handle="Bob Heron"))
    await asha.send(CRISIS)
    assert (await peer.frame_of("message"))["body"] == CRISIS  # shown to the room as usual
    support = await asha.frame_of("support")
    assert support["helplines"][0]["number"] == "14416" and support["counsellor_notified"] is True
    flag = await desk.frame_of("flag")
    assert (flag["level"], flag["handle"], flag["excerpt"], flag["room"], flag["paged"]) == (
        "imminent",
        "Asha Rain",
        CRISIS,
        room.slug,
        True,
    )
    assert member.username not in json.dumps(flag) and f"u:{member.pk}" not in json.dumps(flag)
    assert await peer.nothing_more("support")  # only the author is offered help
    for c in (desk, asha, peer):
        await c.close()


async def test_the_member_answers_id_like_to_talk_and_the_desk_sees_it():
    room = await database_sync_to_async(make_room)()
    kabir = await on_call_counsellor()
    desk, _ = await staff_socket(kabir)
    asha, _ = await join(room.slug, await cookie_for(await database_sync_to_async(make_user)()))
    await asha.send(CRISIS)
    await asha.frame_of("support")
    await desk.frame_of("flag")
    await asha.raw(json.dumps({"type": "support_reply", "wants_to_talk": True}))
    assert (await asha.frame_of("notice"))["code"] == "support_thanks"
    update = await desk.frame_of("flag_update")
    assert update["wants_to_talk"] is True
    await asha.close()
    await desk.close()


async def test_a_counsellor_acknowledges_opens_a_room_and_resolves_over_the_socket():
    room = await database_sync_to_async(make_room)()
    kabir = await on_call_counsellor()
    desk, _ = await staff_socket(kabir)
    asha, _ = await join(room.slug, await cookie_for(await database_sync_to_async(make_user)()))
    await asha.send(CRISIS)
    flag_id = (await desk.frame_of("flag"))["id"]
    await desk.raw(json.dumps({"type": "ack", "flag_id": flag_id}))
    acked = await desk.frame_of("flag_update")
    assert (acked["change"], acked["state"], acked["owner"]) == ("acknowledged", "acknowledged", "Kabir C")
    await desk.raw(json.dumps({"type": "open_room", "flag_id": flag_id}))
    opened = await desk.frame_of("flag_update")
    invite = await asha.frame_of("notice")
    assert invite["code"] == "counsellor_room" and invite["url"] == opened["private_room"]
    assert invite["counsellor"] == {"handle": "Kabir C", "role": "counsellor"}
    await desk.raw(json.dumps({"type": "resolve", "flag_id": flag_id, "outcome": "nope"}))
    assert (await desk.frame_of("error"))["code"] == "invalid"
    await desk.raw(json.dumps({"type": "resolve", "flag_id": flag_id, "outcome": "supported", "note": "Safe now."}))
    assert (await desk.frame_of("flag_update"))["state"] == "resolved"
    await asha.close()
    await desk.close()


async def test_escalation_reaches_the_backup_on_the_desk():
    room = await database_sync_to_async(make_room)()

    @database_sync_to_async
    def two_on_call():  # type: ignore[no-untyped-def]
        primary, backup = counsellor("Kabir C"), counsellor("Leela B")
        rota(timezone.now(), primary=primary, backup=backup)
        return backup

    backup = await two_on_call()
    desk, _ = await staff_socket(backup)
    asha, _ = await join(room.slug, await cookie_for(await database_sync_to_async(make_user)()))
    await asha.send(CRISIS)
    first = await desk.frame_of("flag")
    assert first["paged"] is False  # the backup sees the queue but isn't paged yet

    @database_sync_to_async
    def escalate() -> int:
        from moderation.services import escalate_due_flags

        flag = Flag.objects.get()
        return escalate_due_flags(now=flag.deadline + timedelta(seconds=1))

    assert await escalate() == 1
    update = await desk.frame_of("flag_update")
    assert (update["change"], update["step"], update["paged"]) == ("escalated", "Backup counsellor", True)
    await asha.close()
    await desk.close()


@pytest.mark.parametrize(
    ("who", "code"),
    [("anonymous", 4401), ("guest", 4403), ("member", 4403), ("chair", 4403), ("counsellor without 2FA", 4403)],
)
async def test_members_and_guests_cannot_open_the_moderation_channel(who, code):
    if who == "counsellor without 2FA":
        user = await database_sync_to_async(make_user)(roles=(Role.COUNSELLOR.value,))
        cookie = await cookie_for(user, verified_staff=False)
    elif who == "anonymous":
        cookie = None
    elif who == "guest":
        cookie = await cookie_for(guest_handle="Guest Person")
    else:
        cookie = await cookie_for(
            await database_sync_to_async(make_user)(roles=(Role.CHAIR.value,) if who == "chair" else ())
        )
    client, _, _ = await open_socket("/ws/moderation/", cookie)
    assert (await client.frame())["code"] == "not_allowed"
    assert await close_code_of(client) == code


async def test_a_moderator_sees_reports_and_a_counsellor_does_not():
    room = await database_sync_to_async(make_room)()
    moderator = await database_sync_to_async(make_user)(roles=(Role.MODERATOR.value,))
    kabir = await on_call_counsellor()
    mods, _ = await staff_socket(moderator)
    desk, _ = await staff_socket(kabir)
    author = await database_sync_to_async(make_user)(handle="Noisy One")
    noisy, _ = await join(room.slug, await cookie_for(author))
    reporter, _ = await join(room.slug, await cookie_for(await database_sync_to_async(make_user)(handle="Kind Soul")))
    await noisy.send("something unkind")
    message_id = (await reporter.frame_of("message"))["id"]
    await reporter.raw(json.dumps({"type": "report", "message_id": message_id, "reason": "rude"}))
    assert (await reporter.frame_of("notice"))["code"] == "report_received"
    report = await mods.frame_of("report")
    assert (report["handle"], report["reason"], report["message_id"]) == ("Noisy One", "rude", message_id)
    assert "Kind Soul" not in json.dumps(report)
    assert await desk.nothing_more("report")
    assert await noisy.nothing_more("notice")  # the reported member is not told
    for c in (mods, desk, noisy, reporter):
        await c.close()
