"""Who may do what over the sockets: the whole matrix as one table, then origins, bans and per-address caps.

Read MATRIX as the specification (docs/access-control.md explains it). A cell is what a person in that row
gets when they try the column, in one process with real sessions and the real ASGI stack:

- "ok"   it worked (welcome; own message back; report received; mod done; flag updated; queue shown)
- 4401 / 4403 / 4404   the socket was refused with that close code (4404: "no such room", also for a
         private room you may not know about). For actions in the open room or on the moderation channel,
         a refused socket means the action was never possible, so the cell is that close code.
- "no"   the socket is open, but the action got an `error` frame `not_allowed` (and changed nothing)
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from accounts.models import Role, User
from moderation import services as moderation
from moderation.models import AuditEntry, Flag, PrivateRoomInvite, Restriction
from rooms.models import Access, Programme
from tests.consumers.conftest import HOST, ORIGIN, Client, cookie_for, open_socket
from tests.factories import make_room, make_user
from tests.integration.test_moderation_helpers import post, who

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]

OK, NO = "ok", "no"
CRISIS = "I want to kill myself tonight, I have the pills ready"

# fmt: off
COLUMNS = ("open", "closed", "family", "women", "private", "history", "send", "report", "mute", "ban",
           "mod channel", "sees flags", "sees reports", "ack flag", "resolve flag")
MATRIX: dict[str, tuple[Any, ...]] = {
    #                      open  closed family women private history send report mute ban  mod-ch flags reports ack   resolve
    "anonymous":          (4401, 4401, 4401, 4401, 4404,   4401,   4401, 4401, 4401, 4401, 4401, 4401, 4401,   4401, 4401),
    "guest":              (OK,   4401, 4401, 4401, 4404,   OK,     OK,   OK,   NO,   NO,   4403, 4403, 4403,   4403, 4403),
    "member":             (OK,   OK,   4403, 4403, OK,     OK,     OK,   OK,   NO,   NO,   4403, 4403, 4403,   4403, 4403),
    "family member":      (OK,   4403, OK,   4403, 4404,   OK,     OK,   OK,   NO,   NO,   4403, 4403, 4403,   4403, 4403),
    "chair":              (OK,   OK,   4403, 4403, 4404,   OK,     OK,   OK,   OK,   NO,   4403, 4403, 4403,   4403, 4403),
    "moderator":          (OK,   OK,   OK,   OK,   4404,   OK,     OK,   OK,   OK,   OK,   OK,   OK,   OK,     NO,   NO),
    "counsellor":         (OK,   OK,   OK,   OK,   OK,     OK,     OK,   OK,   NO,   NO,   OK,   OK,   NO,     OK,   OK),
    "admin":              (OK,   OK,   OK,   OK,   4404,   OK,     OK,   OK,   OK,   OK,   OK,   OK,   OK,     OK,   OK),
    "staff without 2FA":  (OK,   OK,   4403, 4403, 4404,   OK,     OK,   OK,   NO,   NO,   4403, 4403, 4403,   4403, 4403),
    "banned":             (4403, 4403, 4403, 4403, 4404,   4403,   4403, 4403, 4403, 4403, 4403, 4403, 4403,   4403, 4403),
}
# fmt: on
# Notes on the rows: "member" is the person the counsellor's private room was opened for (so they get in);
# "chair" chairs the open room and is otherwise a member; "counsellor" opened the private room (its chair);
# "staff without 2FA" is a moderator who hasn't passed the TOTP check: a member until they do; "banned" is a
# member under a site-wide ban. Nobody in the table attests to being a woman, so only staff enter that circle.


def _build_world() -> dict[str, Any]:
    """Rooms of every kind, one person per row, a message in the open room, a crisis flag and a report."""
    people: dict[str, User] = {
        "member": make_user(),
        "family member": make_user(kind=User.Kind.FAMILY),
        "chair": make_user(),
        "moderator": make_user(roles=(Role.MODERATOR.value,)),
        "counsellor": make_user(roles=(Role.COUNSELLOR.value,)),
        "admin": make_user(roles=(Role.ADMIN.value,)),
        "staff without 2FA": make_user(roles=(Role.MODERATOR.value,)),
        "banned": make_user(),
    }
    rooms = {
        "open": make_room(),
        "closed": make_room(access=Access.CLOSED),
        "family": make_room(access=Access.FAMILY),
        "women": make_room(access=Access.WOMEN),
        "private": make_room(access=Access.PRIVATE),
    }
    rooms["open"].chairs.add(people["chair"])
    rooms["private"].chairs.add(people["counsellor"])
    PrivateRoomInvite.objects.create(room=rooms["private"], member_key=f"u:{people['member'].pk}")
    Restriction.objects.create(
        kind=Restriction.Kind.BAN, author_key=f"u:{people['banned'].pk}", created_by_key="u:0"
    )  # programme "" = every room
    target = make_user(handle="Target Person")
    earlier = post(rooms["open"], target, "something said before you came")
    post(rooms["open"], make_user(), CRISIS)
    moderation.check_report(room=rooms["open"], reporter=who(make_user()), message_id=earlier.seq, reason="rude")
    return {"people": people, "rooms": rooms, "earlier": earlier.seq, "flag": Flag.objects.get().pk}


async def _cookie(role: str, world: dict[str, Any]) -> str | None:
    if role == "anonymous":
        return None
    if role == "guest":
        return await cookie_for(guest_handle="Guest Person")
    return await cookie_for(world["people"][role], verified_staff=role != "staff without 2FA")


async def _refused_code(client: Client) -> int | None:
    """Return the close code if the server refused this socket, or None once a welcome arrives."""
    while True:
        output = await client.ws.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            return int(output["code"])
        frame = json.loads(output["text"])
        if frame["type"] == "welcome":
            client.welcome = frame  # type: ignore[attr-defined]
            return None


async def _answer(client: Client, ok_types: tuple[str, ...]) -> dict[str, Any]:
    """Return the next frame that answers an action: one of `ok_types`, or an `error`."""
    for _ in range(50):
        frame = await client.frame(5)
        if frame["type"] in ok_types or frame["type"] == "error":
            return frame
    raise AssertionError(f"no answer among {ok_types}")


def _ok_or_no(frame: dict[str, Any], ok_type: str) -> str:
    if frame["type"] == ok_type:
        return OK
    assert frame["type"] == "error" and frame["code"] == "not_allowed", frame
    return NO


async def _try(role: str, world: dict[str, Any]) -> dict[str, Any]:
    cookie = await _cookie(role, world)
    row: dict[str, Any] = {}
    for name in ("closed", "family", "women", "private"):
        client, _, _ = await open_socket(f"/ws/rooms/{world['rooms'][name].slug}/", cookie)
        row[name] = await _refused_code(client) or OK
        await client.close()

    client, _, _ = await open_socket(f"/ws/rooms/{world['rooms']['open'].slug}/", cookie)
    refused = await _refused_code(client)
    if refused:
        for name in ("open", "history", "send", "report", "mute", "ban"):
            row[name] = refused
    else:
        row["open"] = OK
        history = [m["id"] for m in client.welcome["history"]]  # type: ignore[attr-defined]
        row["history"] = OK if world["earlier"] in history else NO
        client_id = await client.send("hello from the matrix")
        answer = await _answer(client, ("message",))
        row["send"] = OK if answer["type"] == "message" and answer.get("client_id") == client_id else answer
        await client.raw(json.dumps({"type": "report", "message_id": world["earlier"], "reason": "matrix"}))
        row["report"] = _ok_or_no(await _answer(client, ("notice",)), "notice")
        for action in ("mute", "ban"):
            await client.raw(json.dumps({"type": "mod", "action": action, "target": "Target Person", "reason": "x"}))
            row[action] = _ok_or_no(await _answer(client, ("notice",)), "notice")
    await client.close()

    desk, _, _ = await open_socket("/ws/moderation/", cookie)
    refused = await _refused_code(desk)
    if refused:
        for name in ("mod channel", "sees flags", "sees reports", "ack flag", "resolve flag"):
            row[name] = refused
    else:
        welcome = desk.welcome  # type: ignore[attr-defined]
        row["mod channel"] = OK
        row["sees flags"] = OK if welcome["flags"] else NO
        row["sees reports"] = OK if welcome["reports"] else NO
        await desk.raw(json.dumps({"type": "ack", "flag_id": world["flag"]}))
        row["ack flag"] = _ok_or_no(await _answer(desk, ("flag_update",)), "flag_update")
        await desk.raw(json.dumps({"type": "resolve", "flag_id": world["flag"], "outcome": "supported"}))
        row["resolve flag"] = _ok_or_no(await _answer(desk, ("flag_update",)), "flag_update")
    await desk.close()
    return row


@pytest.mark.parametrize("role", list(MATRIX))
async def test_every_role_against_every_socket_resource_and_action(role):
    world = await database_sync_to_async(_build_world)()
    expected = dict(zip(COLUMNS, MATRIX[role], strict=True))
    actual = await _try(role, world)
    wrong = {
        column: (expected[column], actual.get(column)) for column in COLUMNS if actual.get(column) != expected[column]
    }
    assert not wrong, f"{role}: (expected, got) per column: {wrong}"

    @database_sync_to_async
    def side_effects() -> tuple[bool, str, bool]:
        banned = Restriction.objects.filter(kind=Restriction.Kind.BAN, author_key__startswith="u:").exclude(
            created_by_key="u:0"
        )
        return banned.exists(), Flag.objects.get().state, AuditEntry.objects.filter(action="mute").exists()

    ban_made, flag_state, muted = await side_effects()
    # A refusal changes nothing: no ban, mute or flag change by anyone the table says "no" for.
    assert ban_made == (expected["ban"] == OK)
    assert muted == (expected["mute"] == OK)
    assert flag_state == (Flag.State.RESOLVED if expected["resolve flag"] == OK else Flag.State.OPEN)


# --- Cross-site WebSocket hijacking: the Origin must be this site, exactly ----------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        b"http://evil.example",
        b"http://127.0.0.1.evil.example:8000",  # look-alike
        b"http://127.0.0.1:9999",  # the same host on another port: cookies are shared across ports
        b"http://localhost:8000",  # another name for the machine is another origin
        b"ws://127.0.0.1:8000",  # not a web page's scheme
        b"null",  # sandboxed iframes, file: pages
        b"http://127.0.0.1:8000/path",
        None,  # no Origin at all
    ],
)
async def test_a_handshake_from_any_other_origin_is_refused_before_the_socket_opens(origin):
    room = await database_sync_to_async(make_room)()
    cookie = await cookie_for(guest_handle="Alice Lotus")
    _, connected, _ = await open_socket(
        f"/ws/rooms/{room.slug}/", cookie, origin=(b"origin", origin) if origin else None
    )
    assert not connected  # a 403 to the handshake: no welcome, no frames


async def test_the_sites_own_origin_is_accepted_even_with_an_explicit_default_port():
    from config.asgi import application

    room = await database_sync_to_async(make_room)()
    cookie = await cookie_for(guest_handle="Alice Lotus")
    communicator = WebsocketCommunicator(
        application,
        f"/ws/rooms/{room.slug}/",
        headers=[
            (b"host", b"saathi.localhost"),
            (b"origin", b"http://saathi.localhost:80"),
            (b"cookie", cookie.encode()),
        ],
    )
    with override_settings(ALLOWED_HOSTS=["saathi.localhost"]):
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        assert (await Client(communicator).frame_of("welcome"))["room"]["slug"] == room.slug
    await communicator.disconnect()


async def test_a_forged_host_header_does_not_help_a_foreign_origin():
    from config.asgi import application

    room = await database_sync_to_async(make_room)()
    cookie = await cookie_for(guest_handle="Alice Lotus")
    communicator = WebsocketCommunicator(
        application,
        f"/ws/rooms/{room.slug}/",
        headers=[(b"host", b"evil.example"), (b"origin", b"http://evil.example"), (b"cookie", cookie.encode())],
    )
    connected, _ = await communicator.connect(timeout=5)
    assert not connected  # Origin and Host agree, but evil.example isn't a host this site serves


# --- Bans close open sockets -------------------------------------------------------------------------------


async def _closed_within(client: Client, seconds: float) -> tuple[int, float]:
    start = time.monotonic()
    deadline = start + seconds
    while time.monotonic() < deadline:
        output = await client.ws.receive_output(timeout=max(0.05, deadline - time.monotonic()))
        if output["type"] == "websocket.close":
            return int(output["code"]), time.monotonic() - start
    raise AssertionError("socket still open")


async def _welcomed(slug: str, cookie: str) -> Client:
    client, connected, _ = await open_socket(f"/ws/rooms/{slug}/", cookie)
    assert connected
    await client.frame_of("welcome")
    return client


async def test_a_fellowship_ban_closes_that_fellowships_sockets_within_two_seconds_and_no_others():
    @database_sync_to_async
    def scene():  # type: ignore[no-untyped-def]
        return (
            make_room(programme=Programme.NA),
            make_room(programme=Programme.NA),
            make_room(programme=Programme.AA),
            make_user(handle="Noisy One"),
            make_user(roles=(Role.MODERATOR.value,)),
        )

    na_room, other_na_room, aa_room, noisy, moderator = await scene()
    cookie = await cookie_for(noisy)
    here, there, elsewhere = [await _welcomed(r.slug, cookie) for r in (na_room, other_na_room, aa_room)]
    mod_socket = await _welcomed(na_room.slug, await cookie_for(moderator))
    await mod_socket.raw(json.dumps({"type": "mod", "action": "ban", "target": "Noisy One", "reason": "abuse"}))
    for client in (here, there):
        code, took = await _closed_within(client, 2)
        assert code == 4403 and took < 2
    await elsewhere.raw('{"type": "ping"}')
    assert await elsewhere.frame_of("pong") == {"type": "pong"}  # another fellowship's room stays open
    again, _, _ = await open_socket(f"/ws/rooms/{na_room.slug}/", cookie)
    assert await _refused_code(again) == 4403  # and they can't come back
    for client in (elsewhere, mod_socket):
        await client.close()


async def test_a_site_ban_through_the_moderation_service_closes_every_socket_within_two_seconds():
    @database_sync_to_async
    def scene():  # type: ignore[no-untyped-def]
        return make_room(programme=Programme.NA), make_room(programme=Programme.AA), make_user(handle="Noisy One")

    na_room, aa_room, noisy = await scene()
    cookie = await cookie_for(noisy)
    sockets = [await _welcomed(r.slug, cookie) for r in (na_room, aa_room)]

    @database_sync_to_async
    def site_ban() -> None:
        actor = who(make_user(roles=(Role.MODERATOR.value,)))
        target = moderation.Target(author_key=f"u:{noisy.pk}", handle=noisy.handle)
        moderation.do_ban(room=na_room, actor=actor, target=target, reason="threats", everywhere=True)

    await site_ban()
    for client in sockets:
        code, took = await _closed_within(client, 2)
        assert code == 4403 and took < 2
    for room in (na_room, aa_room, await database_sync_to_async(make_room)(programme=Programme.SMART)):
        again, _, _ = await open_socket(f"/ws/rooms/{room.slug}/", cookie)
        assert await _refused_code(again) == 4403


async def test_only_a_moderator_may_ban_from_a_fellowship_and_a_chair_gets_not_allowed():
    room = await database_sync_to_async(make_room)()
    chair = await database_sync_to_async(make_user)()
    await database_sync_to_async(room.chairs.add)(chair)
    await database_sync_to_async(make_user)(handle="Noisy One")
    client = await _welcomed(room.slug, await cookie_for(chair))
    await client.raw(json.dumps({"type": "mod", "action": "ban", "target": "Noisy One", "reason": "x"}))
    assert (await client.frame_of("error"))["code"] == "not_allowed"
    assert not await database_sync_to_async(Restriction.objects.exists)()
    await client.close()


# --- The moderation channel follows who its holder is -----------------------------------------------------


async def _staff_desk(user: User) -> tuple[Client, str]:
    from django.test import Client as HttpClient

    from tests.factories import _pass_second_factor

    def signed_in() -> tuple[HttpClient, str]:
        from django.conf import settings

        http = HttpClient()
        http.force_login(user)
        _pass_second_factor(http, user)
        return http, f"{settings.SESSION_COOKIE_NAME}={http.cookies[settings.SESSION_COOKIE_NAME].value}"

    http, cookie = await database_sync_to_async(signed_in)()
    desk, connected, _ = await open_socket("/ws/moderation/", cookie)
    assert connected
    await desk.frame_of("welcome")
    return desk, http  # type: ignore[return-value]


async def test_a_moderator_who_signs_out_stops_receiving_flags_within_two_seconds():
    moderator = await database_sync_to_async(make_user)(roles=(Role.MODERATOR.value,))
    desk, http = await _staff_desk(moderator)
    await database_sync_to_async(http.post)("/accounts/sign-out/")  # type: ignore[attr-defined]
    code, _ = await _closed_within(desk, 2)
    assert code == 4401


async def test_a_counsellor_whose_role_is_removed_is_cut_off_within_five_seconds_and_refused_after():
    counsellor = await database_sync_to_async(make_user)(roles=(Role.COUNSELLOR.value,))
    desk, http = await _staff_desk(counsellor)

    def demote() -> None:
        counsellor.groups.clear()

    await database_sync_to_async(demote)()
    code, _ = await _closed_within(desk, 5)
    assert code == 4503  # reconnect: the new socket carries the new roles
    from django.conf import settings

    cookie = f"{settings.SESSION_COOKIE_NAME}={http.cookies[settings.SESSION_COOKIE_NAME].value}"  # type: ignore[attr-defined]
    again, _, _ = await open_socket("/ws/moderation/", cookie)
    assert await _refused_code(again) == 4403

    @database_sync_to_async
    def crisis() -> None:
        post(make_room(), make_user(), CRISIS)

    await crisis()  # nothing reaches the closed desk (it was closed; this proves no error on the way)


async def test_other_staff_stay_connected_when_one_signs_out():
    leaving = await database_sync_to_async(make_user)(roles=(Role.MODERATOR.value,))
    staying = await database_sync_to_async(make_user)(roles=(Role.MODERATOR.value,))
    desk, http = await _staff_desk(leaving)
    other, _ = await _staff_desk(staying)
    await database_sync_to_async(http.post)("/accounts/sign-out/")  # type: ignore[attr-defined]
    await _closed_within(desk, 2)
    await other.raw('{"type": "ping"}')
    assert await other.frame_of("pong") == {"type": "pong"}
    await other.close()


# --- Per-address caps (chat/abuse.py) ----------------------------------------------------------------------


async def _from_address(slug: str, cookie: str, address: str) -> Client:
    from config.asgi import application

    communicator = WebsocketCommunicator(
        application, f"/ws/rooms/{slug}/", headers=[HOST, ORIGIN, (b"cookie", cookie.encode())]
    )
    communicator.scope["client"] = (address, 40000)  # what daphne puts there (the peer, or X-Forwarded-For)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return Client(communicator)


@override_settings(SAATHI_MAX_SOCKETS_PER_IP=3, SAATHI_MAX_SOCKETS_PER_MEMBER=10)
async def test_one_address_may_hold_only_so_many_sockets_and_a_freed_one_is_reusable():
    room = await database_sync_to_async(make_room)()
    cookies = [await cookie_for(guest_handle=f"Guest Number {n}") for n in range(4)]
    held = []
    for cookie in cookies[:3]:
        client = await _from_address(room.slug, cookie, "203.0.113.5")
        assert await _refused_code(client) is None
        held.append(client)
    extra = await _from_address(room.slug, cookies[3], "203.0.113.5")
    error = await extra.frame()
    assert (error["type"], error["code"]) == ("error", "rate_limited") and "203.0.113.5" not in error["detail"]
    assert await _refused_code(extra) == 4429
    neighbour = await _from_address(room.slug, cookies[3], "198.51.100.7")  # another address is unaffected
    assert await _refused_code(neighbour) is None
    await held.pop().close()
    await asyncio.sleep(0.1)
    again = await _from_address(room.slug, await cookie_for(guest_handle="Guest Again"), "203.0.113.5")
    assert await _refused_code(again) is None
    from django.core.cache import cache

    local = getattr(cache, "_cache", None)
    if isinstance(local, dict):  # the local-memory cache can be searched: only a keyed hash is there
        assert not any("203.0.113.5" in str(key) for key in local)
    for client in (*held, neighbour, again):
        await client.close()


@override_settings(SAATHI_HANDSHAKES_PER_IP="3/minute")
async def test_too_many_handshakes_from_one_address_are_refused_4429_even_for_refused_sockets():
    room = await database_sync_to_async(make_room)()
    cookie = await cookie_for(guest_handle="Alice Lotus")
    for _ in range(2):
        client = await _from_address(room.slug, cookie, "203.0.113.9")
        assert await _refused_code(client) is None
        await client.close()
    stranger = await _from_address("no-such-room", cookie, "203.0.113.9")  # counted though it goes nowhere
    assert await _refused_code(stranger) == 4404
    limited = await _from_address(room.slug, cookie, "203.0.113.9")
    assert (await limited.frame())["code"] == "rate_limited"
    assert await _refused_code(limited) == 4429
    other = await _from_address(room.slug, cookie, "203.0.113.10")
    assert await _refused_code(other) is None
    await other.close()


async def test_a_refused_join_gives_its_address_slot_back():
    room = await database_sync_to_async(make_room)(access=Access.CLOSED)
    cookie = await cookie_for(guest_handle="Alice Lotus")
    with override_settings(SAATHI_MAX_SOCKETS_PER_IP=1):
        for _ in range(3):  # each refusal (4401) frees its slot, so the next one is judged on access again
            client = await _from_address(room.slug, cookie, "203.0.113.11")
            assert await _refused_code(client) == 4401
            await client.close()  # daphne's websocket.disconnect: the consumer gives its slot back
