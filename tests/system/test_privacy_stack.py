"""Privacy across real processes: daphne, the worker, Redis, PostgreSQL and a real browser.

- Canaries: messages carrying a unique string go down every path of a real daphne (stored, too long, rate
  limited, refused in a muted and in a locked room, a crisis message that raises a flag), a separate worker
  process runs its steps over them; then the daphne log, the worker's output, the lines the shared Redis and
  PostgreSQL wrote during the test (read from the offsets taken before it), and a raw Redis subscriber on the
  layer's channels are searched: no canary, no handle in plaintext in Redis, no handle next to an IP address.
- A real browser: a member signs up, finds a meeting in the directory, joins, writes, quick-exits, then
  deletes their account from the page; the other member's screen turns their words into "[removed]"; every
  table of the PostgreSQL database is scanned for a trace of them; every request of both browsers went to
  the site's own origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from tests.system.conftest import BASE_DIR, Server
from tests.system.helpers import connect_room, guest_cookie, member_cookie

# The browser fixtures of test_browser_room (Debian's Chromium through Playwright, the demo rooms).
from tests.system.test_browser_room import TIMEOUT_MS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Request, WebSocket

pytestmark = [pytest.mark.system, pytest.mark.timeout(150)]

CRISIS = "I want to kill myself tonight, I have the pills ready"
POSTGRES_LOG = Path(os.environ.get("SAATHI_TEST_POSTGRES_LOG", "/var/log/postgresql/postgresql-15-main.log"))
IP = re.compile(
    r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])|(?<![\w:])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])"
)


class LogTail:
    """What a shared log file gained while the test ran (its size is remembered at the start)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.start = path.stat().st_size if path is not None and path.exists() else 0

    def text(self) -> str:
        if self.path is None or not self.path.exists():
            return ""
        with self.path.open("rb") as f:
            f.seek(self.start)
            return f.read().decode("utf-8", "replace")


def redis_log_path(redis_url: str) -> Path | None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        name = client.config_get("logfile").get("logfile") or ""  # read-only: the shared Redis isn't changed
    finally:
        client.close()
    return Path(name) if name else None


def assert_no_leak(source: str, text: str, canary: str, handles: list[str]) -> None:
    """Fail naming the source and line number, never printing the line (it could be health data)."""
    lines = text.splitlines()
    at = [n for n, line in enumerate(lines, 1) if canary in line]
    assert at == [], f"{source}: the canary is on line(s) {at[:10]}"
    paired = [n for n, line in enumerate(lines, 1) if IP.search(line) and any(h in line for h in handles)]
    assert paired == [], f"{source}: a handle next to an IP address on line(s) {paired[:10]}"


@contextlib.asynccontextmanager
async def raw_redis(redis_url: str, prefix: str = "saathi") -> Any:
    """Subscribe raw (redis-py) to every channel-layer channel; yield the list the messages land in."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.psubscribe(f"{prefix}*")
    carried: list[tuple[bytes, bytes]] = []

    async def read() -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is not None:
                carried.append((message["channel"], message["data"]))

    task = asyncio.create_task(read())
    try:
        yield carried
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await pubsub.punsubscribe()
        await pubsub.aclose()
        await client.aclose()


@database_sync_to_async
def cast(live_room: Any) -> tuple[Any, Any, Any]:
    from django.contrib.auth.hashers import make_password

    from accounts.models import Role, User
    from moderation.models import RotaShift
    from tests.factories import make_user

    room, locked = live_room(), live_room(locked=True)
    writer = make_user(handle=f"Canary W{secrets.token_hex(2)}")
    counsellor = make_user(roles=(Role.COUNSELLOR.value,))
    now = timezone.now()
    RotaShift.objects.create(
        user=counsellor, position="primary", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=2)
    )
    # The servers lack the tests' fast hasher: store a hash they can check.
    User.objects.filter(pk=writer.pk).update(password=make_password("a-long-test-password-42", hasher="pbkdf2_sha256"))
    return room, locked, writer


@database_sync_to_async
def mute(room: Any, writer: Any) -> None:
    from moderation.models import Restriction

    Restriction.objects.create(
        kind=Restriction.Kind.MUTE,
        author_key=f"u:{writer.pk}",
        room=room,
        until=timezone.now() + timedelta(minutes=5),
        created_by_key="u:0",
    )


def run_worker_steps(server: Server, hours_ahead: float) -> str:
    """Run every worker step once in a separate process, `hours_ahead` in the future; return its output."""
    code = (
        "import logging; from datetime import timedelta; from django.conf import settings; "
        "from django.utils import timezone; from django.utils.module_loading import import_string; "
        f"now = timezone.now() + timedelta(hours={hours_ahead}); "
        "[logging.getLogger('saathi.worker').info('%s: %s', s, import_string(s)(now=now)) for s in settings.SAATHI_WORKER_STEPS]"
    )
    env = {**server.env, "SAATHI_LOG_LEVEL": "DEBUG"}
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"worker steps failed: {done.stderr[-1500:]}"
    return done.stdout + done.stderr


async def test_canaries_down_every_path_reach_no_log_and_cross_redis_encrypted(
    start_servers: Any, live_room: Any, redis_url: str
) -> None:
    canary = f"canary-{secrets.token_hex(8)}"
    postgres, redis_log = LogTail(POSTGRES_LOG), LogTail(redis_log_path(redis_url))
    (server,) = start_servers(1, SAATHI_SEND_RATE="6/minute", SAATHI_LOG_LEVEL="DEBUG")
    room, locked, writer = await cast(live_room)
    guest_handle = f"Canary G{secrets.token_hex(2)}"
    handles = [writer.handle, guest_handle]
    writer_cookie = await asyncio.to_thread(
        member_cookie, server, username=writer.username, password="a-long-test-password-42"
    )
    reader_cookie = await asyncio.to_thread(guest_cookie, server, handle=guest_handle)

    async with raw_redis(redis_url) as carried:
        alice = await connect_room(server, room.slug, writer_cookie)
        bob = await connect_room(server, room.slug, reader_cookie)
        try:
            await alice.send_message(f"Day 3 for me. {canary}")
            assert (await bob.frame_of("message"))["body"].endswith(canary)
            await alice.send_message(f"{canary} " * 400)
            assert (await alice.frame_of("error"))["code"] == "too_long"
            await alice.send_message(f"{CRISIS} {canary}")
            await alice.frame_of("support", timeout=10)
            for n in range(8):
                await alice.send_message(f"again {n} {canary}")
            await alice.frame_of("error", where=lambda f: f["code"] == "rate_limited")
            await mute(room, writer)
            # Still over the rate: the mute is the reason given all the same (rules before rate).
            await alice.send_message(f"muted {canary}")
            await alice.frame_of("error", timeout=10, where=lambda f: f["code"] == "muted")
            carol = await connect_room(server, locked.slug, reader_cookie)
            await carol.send_message(f"locked {canary}")
            await carol.frame_of("error", where=lambda f: f["code"] == "locked")
            await carol.close()
        finally:
            await alice.close()
            await bob.close()
        await asyncio.sleep(0.5)  # let the last publishes arrive

    worker_output = await asyncio.to_thread(run_worker_steps, server, 3)
    server.stop()
    await asyncio.sleep(0.5)  # PostgreSQL and Redis write their lines

    sources = {
        "daphne log": server.log_text(),
        "worker output": worker_output,
        f"Redis log ({redis_log.path})": redis_log.text(),
        f"PostgreSQL log ({POSTGRES_LOG})": postgres.text(),
    }
    for source, text in sources.items():
        assert_no_leak(source, text, canary, handles)
    ours = [data for name, data in carried if room.slug.encode() in name]
    assert ours, "the raw Redis subscriber saw none of this room's traffic: the check would prove nothing"
    for name, data in carried:
        for secret in (canary, *handles, "Day 3 for me"):
            assert secret.encode() not in data, f"plaintext on Redis channel {name[:40]!r}"


# --- The browser --------------------------------------------------------------------------------------------


@pytest.fixture
def orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Allow ORM reads while sync Playwright's loop exists (the scan runs between browser steps, not in it)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    yield


def test_a_member_deletes_their_account_in_the_browser_and_nothing_left_the_site(
    chromium_path: str,
    demo_rooms: None,
    daphne_server: Server,
    orm_beside_playwright: None,
    chromium: Browser,
) -> None:
    from playwright.sync_api import expect

    from tests.privacy.conftest import traces_of
    from tests.system.test_browser_room import ROOM, join_from_home

    server = daphne_server
    requested: list[str] = []
    member_ctx = chromium.new_context(base_url=server.url)
    guest_ctx = chromium.new_context(base_url=server.url)

    def on_request(request: Request) -> None:
        requested.append(request.url)

    def on_websocket(socket: WebSocket) -> None:
        requested.append(socket.url)

    suffix = "".join(secrets.choice("abcdefghijkmnpqrstuvwxyz") for _ in range(6))  # handles refuse digit runs
    username, handle, password = f"leaving_{suffix}", f"Leaving {suffix}", "a-long-test-password-42"
    words = f"Thirty days today. Thank you all {suffix}."
    try:
        for ctx in (member_ctx, guest_ctx):
            ctx.set_default_timeout(TIMEOUT_MS)
            ctx.on("request", on_request)
        member, guest = member_ctx.new_page(), guest_ctx.new_page()
        for page in (member, guest):
            page.on("websocket", on_websocket)

        # Home, sign up, the directory, a room, send.
        member.goto("/")
        member.goto("/accounts/sign-up/")
        member.fill("#id_username", username)
        member.fill("#id_password1", password)
        member.fill("#id_password2", password)
        member.fill("#id_handle", handle)
        member.check("#id_kind_0")
        with member.expect_navigation():
            member.get_by_role("button", name="Create account").click()
        assert urlsplit(member.url).path == "/rooms/", member.locator("main").inner_text()[:500]
        from accounts.models import User

        user_id = User.objects.get(username=username).pk
        member.goto("/meetings/")
        member.goto(f"/rooms/{ROOM}/")
        expect(member.locator("#connection-state")).to_contain_text("Connected as", timeout=TIMEOUT_MS)
        join_from_home(guest, server)
        member.fill("#composer-input", words)
        member.keyboard.press("Enter")
        theirs = guest.locator("#messages .message", has_text=words)
        expect(theirs.locator(".handle")).to_have_text(handle)
        shown_as = theirs.get_attribute("id")

        # Quick exit, then the account page: download, then delete.
        member.locator("#composer-input").focus()
        member.keyboard.press("Escape")
        member.keyboard.press("Escape")
        member.wait_for_url("**/weather/")
        member.goto(f"/rooms/{ROOM}/")  # back in the meeting, so deleting has a socket to close
        expect(member.locator("#connection-state")).to_contain_text("Connected as", timeout=TIMEOUT_MS)
        me = member_ctx.new_page()
        me.on("websocket", on_websocket)
        me.goto("/accounts/me/")
        me.fill("#id_password", password)
        me.check("#id_confirm")
        me.get_by_role("button", name="Delete my account").click()
        me.wait_for_url(f"{server.url}/")

        # The other member's screen: their words and handle are gone, in place.
        erased = guest.locator(f"#{shown_as}")
        expect(erased.locator(".body")).to_have_text("[removed]")
        expect(erased.locator(".handle")).to_have_text("[removed]")
        expect(guest.locator("#messages .message", has_text=words)).to_have_count(0)
        # The member's own open meeting closed (4401: not signed in).
        expect(member.locator("#connection-state")).not_to_contain_text("Connected as", timeout=TIMEOUT_MS)
        guest.reload()
        expect(guest.locator("#connection-state")).to_contain_text("Connected as", timeout=TIMEOUT_MS)
        expect(guest.locator("#messages .message", has_text=words)).to_have_count(0)
    finally:
        member_ctx.close()
        guest_ctx.close()

    from accounts.models import RetiredHandle

    assert not User.objects.filter(pk=user_id).exists()
    kept = {(RetiredHandle._meta.db_table, "handle_key")}
    traces = traces_of(user_id=user_id, username=username, email="", handle=handle, allow=kept)
    assert traces == [], "rows still linking to the erased member:\n  " + "\n  ".join(map(str, traces))

    own = {("http", "127.0.0.1", server.port), ("ws", "127.0.0.1", server.port)}
    foreign = [u for u in requested if (urlsplit(u).scheme, urlsplit(u).hostname, urlsplit(u).port) not in own]
    assert requested and foreign == [], f"requests to third parties: {foreign}"
    paths = {urlsplit(u).path for u in requested}
    assert {"/", "/accounts/sign-up/", "/meetings/", f"/rooms/{ROOM}/", "/accounts/me/", "/weather/"} <= paths
