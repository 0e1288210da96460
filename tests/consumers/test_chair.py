"""Running a meeting like in person, over real sockets: the waiting room, the queue, the chair's tools, milestones."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine
from channels.db import database_sync_to_async
from django.test import Client

from tests.consumers.conftest import cookie_for, open_socket
from tests.factories import make_room, make_user
from tests.meeting_factories import make_meeting

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]


async def join(slug: str, cookie: str):
    client, connected, _ = await open_socket(f"/ws/rooms/{slug}/", cookie)
    assert connected
    return client, await client.frame_of("welcome")


async def frame(client, kind: str, **match):
    """Return the next frame of `kind` whose fields match (skipping presence and the rest)."""
    for _ in range(50):
        got = await client.frame_of(kind)
        if all(got.get(k) == v for k, v in match.items()):
            return got
    raise AssertionError(f"no {kind} frame with {match}")


async def do(client, **frame_fields):
    await client.raw(json.dumps(frame_fields))


@database_sync_to_async
def chaired_room(**extra):
    room = make_room(**extra)
    chair = make_user(handle="Priya Banyan")
    room.chairs.add(chair)
    return room, chair


async def test_a_guest_waits_in_the_waiting_room_then_shares_once_the_meeting_starts():
    doors = datetime(2025, 6, 2, 13, 22, tzinfo=UTC)  # 18:52 Kolkata; the meeting starts at 19:00
    with time_machine.travel(doors, tick=True) as clock:
        meeting = await database_sync_to_async(make_meeting)(
            start=time(19, 0), format_text="We open with the Serenity Prayer."
        )
        guest, welcome = await join(meeting.room.slug, await cookie_for(guest_handle="Mina Heron"))
        assert welcome["meeting"]["state"] == "doors_open" and welcome["meeting"]["minutes_to_start"] == 8
        assert welcome["meeting"]["starts_at"] == "2025-06-02T13:30:00Z" and welcome["meeting"]["sharing"] is False
        assert welcome["room"]["format"] == "We open with the Serenity Prayer."  # readable while waiting
        client_id = await guest.send("hello?")
        refused = await guest.frame_of("error")
        assert refused["code"] == "not_allowed" and refused["client_id"] == client_id

        clock.move_to(datetime(2025, 6, 2, 13, 30, 5, tzinfo=UTC))
        await guest.send("hello everyone")
        mine = await guest.frame_of("message")
        assert mine["body"] == "hello everyone"
        await guest.close()


async def test_a_scheduled_room_refuses_people_before_its_doors_open_and_says_when():
    with time_machine.travel(datetime(2025, 6, 2, 12, 0, tzinfo=UTC), tick=True):
        meeting = await database_sync_to_async(make_meeting)(start=time(19, 0))
        client, _, _ = await open_socket(f"/ws/rooms/{meeting.room.slug}/", await cookie_for(guest_handle="Early Bird"))
        refusal = await client.frame_of("error")
        assert refusal["opens_at"].startswith("2025-06-02T13:20:00")
        assert (await client.ws.receive_output(timeout=3))["code"] == 4409


async def test_the_chair_calls_the_next_person_in_the_speaking_queue():
    room, chair = await chaired_room()
    chair_ws, _ = await join(room.slug, await cookie_for(chair))
    asha, _ = await join(room.slug, await cookie_for(guest_handle="Asha Lotus"))
    ravi, _ = await join(room.slug, await cookie_for(guest_handle="Ravi Kite"))

    await do(asha, type="hand", up=True)
    await frame(chair_ws, "queue", handles=["Asha Lotus"])
    await do(ravi, type="hand", up=True)
    queue = await frame(chair_ws, "queue", handles=["Asha Lotus", "Ravi Kite"])
    assert queue == {"type": "queue", "handles": ["Asha Lotus", "Ravi Kite"], "speaking": None}

    await do(ravi, type="mod", action="next")  # not the chair
    assert (await ravi.frame_of("error"))["code"] == "not_allowed"

    await do(chair_ws, type="mod", action="next")
    called = await frame(ravi, "queue", speaking="Asha Lotus")
    assert called["handles"] == ["Ravi Kite"]
    turn = await frame(asha, "notice", code="your_turn")
    assert turn["text"] == "It's your turn to share."
    assert await ravi.nothing_more("notice")  # only the person called is told it is their turn

    await do(ravi, type="hand", up=False)
    assert (await frame(asha, "queue", handles=[]))["speaking"] == "Asha Lotus"
    for ws in (chair_ws, asha, ravi):
        await ws.close()


async def test_the_chair_posts_the_readings_closes_sharing_and_times_shares():
    room, chair = await chaired_room(format_text="Preamble: we are a fellowship…")
    chair_ws, _ = await join(room.slug, await cookie_for(chair))
    member, _ = await join(room.slug, await cookie_for(guest_handle="Tara Finch"))

    await do(chair_ws, type="chair", action="readings")
    assert await frame(member, "readings") == {"type": "readings", "text": "Preamble: we are a fellowship…"}

    await do(chair_ws, type="chair", action="close_sharing")
    await frame(member, "notice", code="sharing_closed")
    assert (await frame(member, "meeting"))["sharing"] is False
    await member.send("can I share?")
    assert (await member.frame_of("error"))["code"] == "not_allowed"
    await chair_ws.send("We'll begin with a moment of silence.")  # the chair may still speak
    assert (await frame(member, "message"))["handle"] == "Priya Banyan"

    await do(chair_ws, type="chair", action="open_sharing")
    await frame(member, "notice", code="sharing_open")
    await member.send("Thank you. I'm Tara.")
    assert (await frame(member, "message", body="Thank you. I'm Tara."))["handle"] == "Tara Finch"

    await do(chair_ws, type="chair", action="timer", seconds=180)
    assert (await frame(member, "meeting"))["share_seconds"] == 180
    await do(member, type="hand", up=True)
    await frame(chair_ws, "queue", handles=["Tara Finch"])  # the chair calls whoever they see waiting
    await do(chair_ws, type="mod", action="next")
    timed = await frame(member, "meeting", speaking="Tara Finch")
    ends = datetime.fromisoformat(timed["timer_ends_at"].replace("Z", "+00:00"))
    assert timedelta(seconds=170) < ends - datetime.now(UTC) <= timedelta(seconds=180)

    await do(chair_ws, type="chair", action="crosstalk_on")
    notice = await frame(member, "notice", code="crosstalk")
    assert "Cross-talk is on" in notice["text"]
    assert (await frame(member, "meeting"))["crosstalk"] is True

    await do(member, type="chair", action="close_sharing")
    assert (await member.frame_of("error"))["code"] == "not_allowed"
    await chair_ws.close()
    await member.close()


async def test_a_member_shares_a_milestone_and_the_room_celebrates_without_seeing_the_date():
    room = await database_sync_to_async(make_room)()
    sober = await database_sync_to_async(make_user)(
        handle="Dev Sparrow", sobriety_date=date.today() - timedelta(days=95)
    )
    dev, _ = await join(room.slug, await cookie_for(sober))
    peer, _ = await join(room.slug, await cookie_for(guest_handle="Nila Crane"))
    await do(dev, type="milestone")
    seen = await frame(peer, "milestone")
    assert seen == {
        "type": "milestone",
        "handle": "Dev Sparrow",
        "code": "90d",
        "label": "90 days",
        "text": "Dev Sparrow is celebrating 90 days. Congratulations!",
    }
    await do(peer, type="milestone")  # a guest keeps no date
    assert (await peer.frame_of("error"))["code"] == "not_allowed"
    await dev.close()
    await peer.close()


async def test_resetting_a_sobriety_date_is_private_and_never_announced():
    room = await database_sync_to_async(make_room)()
    user = await database_sync_to_async(make_user)(handle="Kiran Wren", sobriety_date=date(2024, 1, 1))
    peer, _ = await join(room.slug, await cookie_for(guest_handle="Nila Crane"))
    kiran, _ = await join(room.slug, await cookie_for(user))

    def reset():
        client = Client()
        client.force_login(user)
        return client.post("/meetings/milestones/", {"sobriety_date": date.today().isoformat()})

    response = await database_sync_to_async(reset)()
    assert response.status_code == 302
    assert await peer.nothing_more("notice", timeout=0.5)
    assert await peer.nothing_more("milestone", timeout=0.2)
    assert await peer.nothing_more("message", timeout=0.2)
    await do(kiran, type="milestone")
    assert (await kiran.frame_of("error"))["code"] == "not_found"  # under 24 hours: nothing to share yet
    await peer.close()
    await kiran.close()


async def test_a_full_meeting_turns_newcomers_away_but_not_staff_or_those_already_in():
    from accounts.models import Role
    from tests.consumers.conftest import open_socket
    from tests.factories import make_user

    # A meeting that runs all day, every day, so it is live whenever the test runs.
    meeting = await database_sync_to_async(make_meeting)(
        start=time(0, 0), duration=timedelta(hours=23, minutes=59), capacity=2
    )
    room = meeting.room
    first_cookie = await cookie_for(guest_handle="Seat One")
    first, _ = await join(room.slug, first_cookie)
    second, _ = await join(room.slug, await cookie_for(guest_handle="Seat Two"))
    third, _, _ = await open_socket(f"/ws/rooms/{room.slug}/", await cookie_for(guest_handle="Seat Three"))
    error = await third.frame_of("error")
    assert error["code"] == "rate_limited" and "full" in error["detail"]
    closed = await third.ws.receive_output(timeout=3)
    assert closed == {"type": "websocket.close", "code": 4429}
    again, _ = await join(room.slug, first_cookie)  # a second tab of someone already in: still one person
    moderator = await database_sync_to_async(make_user)(roles=(Role.MODERATOR.value,))
    staff, _ = await join(room.slug, await cookie_for(moderator))
    for client in (first, second, again, staff):
        await client.close()
