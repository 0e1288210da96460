"""Abuse against real daphne processes: password guessing, per-address socket caps (and whose address counts),
slowloris clients, and bans or sign-outs on one process closing the person's socket on another.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from websockets.asyncio.client import connect

from accounts.models import Role
from tests.factories import PASSWORD, make_user
from tests.system.conftest import Server, ServerSet
from tests.system.helpers import Browserish, RoomSocket, connect_room, guest_cookie, member_cookie, staff_cookie

pytestmark = [pytest.mark.system, pytest.mark.timeout(240)]


def server_user(**fields: Any) -> Any:
    """make_user, with a password hash the servers can check (tests hash with MD5; the servers don't accept it)."""
    from django.contrib.auth.hashers import make_password

    from accounts.models import User

    user = make_user(**fields)
    User.objects.filter(pk=user.pk).update(password=make_password(PASSWORD, hasher="pbkdf2_sha256"))
    return user


# --- Password guessing, over real HTTP -----------------------------------------------------------------------


def test_repeated_wrong_passwords_lock_the_username_with_a_generic_message_over_http(
    live_db: dict[str, Any], start_servers: Callable[..., list[Server]]
) -> None:
    user = server_user()
    (server,) = start_servers(1, SAATHI_LOGIN_FAILURE_LIMIT="3")
    guesser = Browserish(server.url)
    statuses = []
    for _ in range(3):
        status, _, _ = guesser.post_form("/accounts/sign-in/", {"username": user.username, "password": "guess-1234567"})
        statuses.append(status)
    assert statuses == [200, 200, 429]  # the form again with an error, then locked at the limit
    status, _, body = guesser.post_form("/accounts/sign-in/", {"username": user.username, "password": PASSWORD})
    assert status == 429 and "Too many attempts" in body and user.username not in body
    # The username is locked, not just this client: the right password from elsewhere is refused the same way.
    status, _, other_body = Browserish(server.url).post_form(
        "/accounts/sign-in/", {"username": user.username, "password": PASSWORD}
    )
    assert status == 429 and other_body == body
    assert user.username not in server.log_text() and "127.0.0.1" not in server.log_text()


# --- Per-address socket caps, and whose address counts ---------------------------------------------------------


async def _raw_socket(server: Server, slug: str, cookie: str, forwarded_for: str | None = None) -> RoomSocket:
    url = server.url.replace("http://", "ws://") + f"/ws/rooms/{slug}/"
    headers = {"Cookie": cookie, **({"X-Forwarded-For": forwarded_for} if forwarded_for else {})}
    ws = await connect(url, origin=server.origin, additional_headers=headers, open_timeout=10, ping_interval=None)  # type: ignore[arg-type]
    return RoomSocket(ws, url)


async def _welcomed_or_refused(sock: RoomSocket) -> str | int:
    first = await sock.frame(10)
    if first["type"] == "welcome":
        return "welcome"
    assert (first["type"], first["code"]) == ("error", "rate_limited"), first
    return await sock.close_code() or 0


@pytest.fixture
def start_proxied_server(live_db: dict[str, Any], redis_url: str, tmp_path: Any) -> Iterator[Callable[..., Server]]:
    """Factory: one server run as behind nginx (`manage.py serve --proxy-headers`), stopped at teardown."""
    servers = ServerSet(live_db, redis_url, tmp_path)
    real_popen = subprocess.Popen

    def start(**extra: str) -> Server:
        def with_proxy_headers(argv: list[str], **kwargs: Any) -> Any:
            return real_popen([*argv, "--proxy-headers"], **kwargs)

        with mock.patch("tests.system.conftest.subprocess.Popen", with_proxy_headers):
            return servers.start(1, **extra)[0]

    try:
        yield start
    finally:
        servers.stop_all()


async def test_per_address_socket_cap_counts_the_peer_unless_daphne_trusts_a_proxy(
    start_servers: Callable[..., list[Server]],
    start_proxied_server: Callable[..., Server],
    live_room: Callable[..., Any],
) -> None:
    slug = (await database_sync_to_async(live_room)()).slug
    limits = {"SAATHI_MAX_SOCKETS_PER_IP": "3", "SAATHI_HANDSHAKES_PER_IP": "100/minute"}
    (direct,) = start_servers(1, **limits)
    proxied = start_proxied_server(**limits)
    open_sockets: list[RoomSocket] = []
    try:
        # Straight to daphne: a client's own X-Forwarded-For is ignored, so spoofing it doesn't buy more sockets.
        cookies = await asyncio.gather(*(asyncio.to_thread(guest_cookie, direct.url) for _ in range(4)))
        for n, cookie in enumerate(cookies[:3]):
            open_sockets.append(sock := await _raw_socket(direct, slug, cookie, forwarded_for=f"198.51.100.{n}"))
            assert await _welcomed_or_refused(sock) == "welcome"
        spoofed = await _raw_socket(direct, slug, cookies[3], forwarded_for="198.51.100.99")
        assert await _welcomed_or_refused(spoofed) == 4429

        # Behind the proxy (--proxy-headers): the forwarded address is the client's, one bucket per address.
        cookies = await asyncio.gather(*(asyncio.to_thread(guest_cookie, proxied.url) for _ in range(5)))
        for cookie in cookies[:3]:
            open_sockets.append(sock := await _raw_socket(proxied, slug, cookie, forwarded_for="203.0.113.7"))
            assert await _welcomed_or_refused(sock) == "welcome"
        fourth = await _raw_socket(proxied, slug, cookies[3], forwarded_for="203.0.113.7")
        assert await _welcomed_or_refused(fourth) == 4429
        neighbour = await _raw_socket(proxied, slug, cookies[4], forwarded_for="203.0.113.8")
        open_sockets.append(neighbour)
        assert await _welcomed_or_refused(neighbour) == "welcome"

        # The per-person cap (3) holds however many addresses one person comes from.
        for n in range(2):
            open_sockets.append(sock := await _raw_socket(proxied, slug, cookies[4], forwarded_for=f"192.0.2.{n}"))
            assert await _welcomed_or_refused(sock) == "welcome"
        fourth_of_theirs = await _raw_socket(proxied, slug, cookies[4], forwarded_for="192.0.2.9")
        assert await _welcomed_or_refused(fourth_of_theirs) == 4429
    finally:
        for sock in open_sockets:
            await sock.close()
    for server in (direct, proxied):  # addresses are never logged
        log = server.log_text()
        assert "198.51.100." not in log and "203.0.113." not in log and "192.0.2." not in log
        assert "Traceback" not in log


# --- Slowloris ---------------------------------------------------------------------------------------------


async def _slow_client(port: int, stop: asyncio.Event, alive: list[int]) -> None:
    """Open a connection and dribble an HTTP request's headers, one small header a second, never finishing."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return
    alive[0] += 1
    try:
        writer.write(b"GET /ws/rooms/slow/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        n = 0
        while not stop.is_set():
            n += 1
            writer.write(f"X-Slow-{n}: a\r\n".encode())
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    except (ConnectionError, OSError):
        pass
    finally:
        alive[0] -= 1
        writer.close()


async def _round_trips(sender: RoomSocket, receiver: RoomSocket, count: int) -> list[float]:
    """Send `count` messages one after another; return each one's time from send to the other member's screen."""
    took = []
    for n in range(count):
        start = time.monotonic()
        await sender.send_message(f"check {n} {start}")
        await receiver.frame_of("message", 5, where=lambda f, n=n, start=start: f["body"] == f"check {n} {start}")
        took.append(time.monotonic() - start)
    return took


async def test_two_hundred_slowloris_clients_do_not_keep_real_members_out_or_slow_them_down(
    start_servers: Callable[..., list[Server]], live_room: Callable[..., Any]
) -> None:
    slug = (await database_sync_to_async(live_room)()).slug
    (server,) = start_servers(1)
    cookies = await asyncio.gather(*(asyncio.to_thread(guest_cookie, server.url) for _ in range(2)))
    async with contextlib.AsyncExitStack() as stack:
        a = await connect_room(server, slug, cookies[0])
        b = await connect_room(server, slug, cookies[1])
        stack.push_async_callback(a.close)
        stack.push_async_callback(b.close)
        baseline = await _round_trips(a, b, 10)

        stop, alive = asyncio.Event(), [0]
        slow = [asyncio.create_task(_slow_client(server.port, stop, alive)) for _ in range(200)]
        try:
            await asyncio.sleep(2)
            assert alive[0] >= 190, f"only {alive[0]} slow clients connected"
            start = time.monotonic()
            latecomer_cookie = await asyncio.to_thread(guest_cookie, server.url)  # HTTP still answers
            latecomer = await connect_room(server, slug, latecomer_cookie)
            stack.push_async_callback(latecomer.close)
            join_seconds = time.monotonic() - start
            under_attack = await _round_trips(latecomer, a, 10)
            still_slow = alive[0]
        finally:
            stop.set()
            await asyncio.gather(*slow, return_exceptions=True)

    print(
        f"slowloris: {still_slow} slow clients held; sign-in+join {join_seconds:.2f}s; "
        f"send->delivered p50 {statistics.median(baseline) * 1000:.0f} ms before, "
        f"{statistics.median(under_attack) * 1000:.0f} ms during (max {max(under_attack) * 1000:.0f} ms)"
    )
    assert join_seconds < 5
    assert statistics.median(under_attack) <= 3 * statistics.median(baseline) + 0.2
    assert max(under_attack) < 2


# --- A ban or sign-out on process B closes the person's socket on process A ----------------------------------


async def test_a_ban_or_sign_out_through_one_process_closes_the_persons_socket_on_another_within_two_seconds(
    start_servers: Callable[..., list[Server]], live_room: Callable[..., Any]
) -> None:
    @database_sync_to_async
    def scene() -> tuple[str, str, str, str, str]:
        from django_otp.plugins.otp_totp.models import TOTPDevice

        room = live_room(programme="na")
        noisy, leaver = server_user(handle="Noisy One"), server_user()
        moderator = server_user(roles=(Role.MODERATOR.value,))
        device = TOTPDevice.objects.create(user=moderator, name="test", confirmed=True)
        return room.slug, noisy.username, leaver.username, moderator.username, device.key

    slug, noisy, leaver, moderator, device_key = await scene()
    a, b = start_servers(2)
    noisy_cookie = await asyncio.to_thread(member_cookie, a, username=noisy, password=PASSWORD)
    leaver_http = Browserish(b.url)  # signs in on B, keeps that browser to sign out there later
    await asyncio.to_thread(leaver_http.post_form, "/accounts/sign-in/", {"username": leaver, "password": PASSWORD})
    moderator_cookie = await asyncio.to_thread(
        staff_cookie, b, username=moderator, password=PASSWORD, device_key=device_key
    )

    noisy_socket = await connect_room(a, slug, noisy_cookie)
    leaver_socket = await connect_room(a, slug, leaver_http.session_cookie())
    desk = await connect_room(b, slug, moderator_cookie)
    try:
        assert desk.welcome and desk.welcome["you"]["role"] == "moderator"
        start = time.monotonic()
        await desk.send_frame({"type": "mod", "action": "ban", "target": "Noisy One", "reason": "abuse"})
        assert await noisy_socket.close_code(timeout=2) == 4403
        ban_seconds = time.monotonic() - start

        start = time.monotonic()
        await asyncio.to_thread(leaver_http.post_form, "/accounts/sign-out/", {}, form_page="/accounts/me/")
        assert await leaver_socket.close_code(timeout=2) == 4401
        sign_out_seconds = time.monotonic() - start
    finally:
        for sock in (noisy_socket, leaver_socket, desk):
            await sock.close()
    print(f"cross-process: ban closed the socket in {ban_seconds:.2f}s, sign-out in {sign_out_seconds:.2f}s")
    assert ban_seconds < 2 and sign_out_seconds < 2
