"""Who someone is can change while their sockets are open: sign-out, password, roles, deletion, ban."""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import Role
from tests.consumers.conftest import open_socket
from tests.factories import PASSWORD, make_room, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]


def signed_in_client(user) -> tuple[Client, str]:
    from django.conf import settings

    client = Client()
    client.force_login(user)
    return client, f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def closed_within(client, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        output = await client.ws.receive_output(timeout=max(0.05, deadline - time.monotonic()))
        if output["type"] == "websocket.close":
            return output["code"]
    raise AssertionError("socket still open")


async def open_room_socket(cookie: str):
    room = await database_sync_to_async(make_room)()
    client, connected, _ = await open_socket(f"/ws/rooms/{room.slug}/", cookie)
    assert connected
    assert (await client.frame_of("welcome"))["type"] == "welcome"
    return client


async def test_signing_out_closes_that_persons_sockets_within_two_seconds():
    user = await database_sync_to_async(make_user)()
    http, cookie = await database_sync_to_async(signed_in_client)(user)
    socket = await open_room_socket(cookie)
    await database_sync_to_async(http.post)("/accounts/sign-out/")
    assert await closed_within(socket, 2) == 4401


async def test_changing_the_password_closes_open_sockets_within_two_seconds():
    user = await database_sync_to_async(make_user)()
    http, cookie = await database_sync_to_async(signed_in_client)(user)
    socket = await open_room_socket(cookie)
    response = await database_sync_to_async(http.post)(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "another-long-password-7",
            "new_password2": "another-long-password-7",
        },
    )
    assert response.status_code == 302
    assert await closed_within(socket, 2) == 4401


async def test_deleting_the_account_closes_open_sockets_within_two_seconds():
    user = await database_sync_to_async(make_user)()
    http, cookie = await database_sync_to_async(signed_in_client)(user)
    socket = await open_room_socket(cookie)
    await database_sync_to_async(http.post)("/accounts/me/delete/", {"password": PASSWORD, "confirm": "on"})
    assert await closed_within(socket, 2) == 4401
    # and the old session can't come back in
    room = await database_sync_to_async(make_room)()
    again, _, _ = await open_socket(f"/ws/rooms/{room.slug}/", cookie)
    assert (await again.frame())["type"] == "error"
    assert await closed_within(again, 2) == 4401


async def test_a_role_change_asks_open_sockets_to_reconnect_within_five_seconds():
    user = await database_sync_to_async(make_user)()
    _, cookie = await database_sync_to_async(signed_in_client)(user)
    socket = await open_room_socket(cookie)

    def promote() -> None:
        user.groups.add(Group.objects.get_or_create(name=Role.CHAIR.value)[0])

    await database_sync_to_async(promote)()
    assert await closed_within(socket, 5) == 4503


async def test_other_peoples_sockets_stay_open():
    user = await database_sync_to_async(make_user)()
    bystander = await database_sync_to_async(make_user)()
    http, cookie = await database_sync_to_async(signed_in_client)(user)
    _, bystander_cookie = await database_sync_to_async(signed_in_client)(bystander)
    mine = await open_room_socket(cookie)
    theirs = await open_room_socket(bystander_cookie)
    await database_sync_to_async(http.post)("/accounts/sign-out/")
    assert await closed_within(mine, 2) == 4401
    await asyncio.sleep(0.3)
    await theirs.raw('{"type": "ping"}')
    assert (await theirs.frame_of("pong")) == {"type": "pong"}
    await theirs.close()
