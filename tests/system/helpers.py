"""Clients for system tests: real HTTP (the CSRF flow, session cookies) and real WebSockets.

Everything here talks to a running server over the network, the way a browser or a mobile client would.
Nothing touches the database or Django internals, so these helpers also suit a probe against staging.

    cookie = await asyncio.to_thread(guest_cookie, server.url)           # a guest seat, over HTTP
    async with open_room(server, slug, cookie) as ws:                     # waits for `welcome`
        await ws.send_message("hello")
        mine = await ws.frame_of("message")
        await ws.wait_for_id(10)                                           # every message up to id 10
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import re
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

# The servers run with DJANGO_DEBUG=true, so the cookies carry their plain names (not the __Host- ones).
SESSION_COOKIE = "saathi-session"
CSRF_COOKIE = "saathi-csrf"
_CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class HasUrl(Protocol):
    @property
    def url(self) -> str: ...


def _base(server: HasUrl | str) -> str:
    return (server if isinstance(server, str) else server.url).rstrip("/")


# --- HTTP ---------------------------------------------------------------------------------------------


class Browserish:
    """A tiny cookie-keeping HTTP client: enough for the CSRF flow of Django forms."""

    def __init__(self, base_url: str, timeout: float = 10) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def get(self, path: str) -> tuple[int, str, str]:
        """GET a page; return (status, final URL, body)."""
        with self.opener.open(self.base + path, timeout=self.timeout) as response:
            return response.status, response.geturl(), response.read().decode()

    def post_form(self, path: str, fields: dict[str, str], *, form_page: str | None = None) -> tuple[int, str, str]:
        """POST a form the way a browser does: fetch the page for the CSRF token, send it back with a Referer."""
        _, _, page = self.get(form_page or path)
        match = _CSRF_INPUT.search(page)
        token = match.group(1) if match else self.cookie(CSRF_COOKIE)
        assert token, f"no CSRF token on {form_page or path}"
        data = urllib.parse.urlencode({"csrfmiddlewaretoken": token, **fields}).encode()
        request = urllib.request.Request(
            self.base + path,
            data=data,
            headers={"Referer": self.base + (form_page or path), "Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.geturl(), exc.read().decode(errors="replace")

    def session_cookie(self) -> str:
        value = self.cookie(SESSION_COOKIE)
        assert value, "the server set no session cookie"
        return f"{SESSION_COOKIE}={value}"


def guest_cookie(server: HasUrl | str, *, handle: str | None = None) -> str:
    """Take a guest pass over real HTTP (GET / for the CSRF cookie, POST /guest/); return the Cookie header.

    Blocking: call it with `await asyncio.to_thread(guest_cookie, server.url)` from async tests.
    """
    client = Browserish(_base(server))
    status, final_url, body = client.post_form("/guest/", {"handle": handle or "", "next": "/rooms/"}, form_page="/")
    assert status == 200 and final_url.endswith("/rooms/"), f"guest pass refused ({status}): {body[:300]}"
    return client.session_cookie()


def member_cookie(server: HasUrl | str, *, username: str, password: str) -> str:
    """Sign in over real HTTP (the sign-in form and its CSRF token); return the Cookie header.

    The account must exist in the database the server uses (for example `tests.factories.make_user`, whose
    password is `tests.factories.PASSWORD`, created inside a `live_db` test).
    """
    client = Browserish(_base(server))
    status, final_url, body = client.post_form("/accounts/sign-in/", {"username": username, "password": password})
    assert status == 200 and "/accounts/sign-in/" not in final_url, f"sign-in refused ({status}): {body[:300]}"
    return client.session_cookie()


def staff_cookie(server: HasUrl | str, *, username: str, password: str, device_key: str) -> str:
    """Sign in over real HTTP and pass the TOTP second factor with the current code; return the Cookie header.

    `device_key` is the hex key of a confirmed `TOTPDevice` of the account (staff must pass it unless the
    servers run with SAATHI_REQUIRE_STAFF_2FA=false).
    """
    from binascii import unhexlify

    from django_otp.oath import totp

    client = Browserish(_base(server))
    status, final_url, body = client.post_form("/accounts/sign-in/", {"username": username, "password": password})
    assert status == 200, f"sign-in refused ({status}): {body[:300]}"
    token = f"{totp(unhexlify(device_key)):06d}"
    status, final_url, body = client.post_form("/accounts/second-factor/", {"token": token})
    assert status == 200 and "second-factor" not in final_url, f"second factor refused ({status}): {body[:300]}"
    return client.session_cookie()


# --- WebSockets ---------------------------------------------------------------------------------------


class RoomSocket:
    """A room socket with frame helpers. Every frame read is kept: `frames` (all), `messages` (type message)."""

    def __init__(self, ws: ClientConnection, url: str, *, follow_resync: bool = True) -> None:
        self.ws = ws
        self.url = url
        self.frames: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.welcome: dict[str, Any] | None = None
        self.follow_resync = follow_resync
        self.resyncs = 0  # times the server asked this client to resume (a `notice` with code `resync`)

    # -- reading --
    async def frame(self, timeout: float = 5) -> dict[str, Any]:
        """Return the next frame (raises TimeoutError, or ConnectionClosed with the close code)."""
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frame: dict[str, Any] = json.loads(raw)
        self.frames.append(frame)
        if frame.get("type") == "message":
            self.messages.append(frame)
        elif frame.get("type") == "notice" and frame.get("code") == "resync":
            # What room.js does: the server couldn't back-fill us, so ask for everything after our last id.
            self.resyncs += 1
            if self.follow_resync:
                await self.send_frame({"type": "resume", "after": max(self.ids(), default=0)})
        return frame

    async def frame_of(
        self, kind: str, timeout: float = 5, where: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any]:
        """Return the next frame of this type (and matching `where`), skipping others; one deadline for all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"no {kind} frame within {timeout}s; last frames: {self.frames[-5:]}")
            try:
                frame = await self.frame(left)
            except TimeoutError:
                raise TimeoutError(f"no {kind} frame within {timeout}s; last frames: {self.frames[-5:]}") from None
            if frame.get("type") == kind and (where is None or where(frame)):
                return frame

    async def wait_for_id(self, last_id: int, timeout: float = 10) -> list[dict[str, Any]]:
        """Read until a message with id >= last_id has arrived; return every message frame read so far."""
        if not self.messages or max(m["id"] for m in self.messages) < last_id:
            await self.frame_of("message", timeout, where=lambda f: f["id"] >= last_id)
        return self.messages

    async def quiet(self, seconds: float = 0.5) -> list[dict[str, Any]]:
        """Read for `seconds`; return the frames that arrived (to prove nothing more comes)."""
        start = len(self.frames)
        with contextlib.suppress(TimeoutError):
            while True:
                await self.frame(seconds)
        return self.frames[start:]

    def ids(self) -> list[int]:
        """The message ids this socket received, in arrival order (duplicates kept, so tests can see them)."""
        return [m["id"] for m in self.messages]

    # -- writing --
    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def send_message(self, body: str, client_id: str | None = None) -> str:
        """Send a `send` frame; return its client_id (a fresh UUID unless given, to retry)."""
        client_id = client_id or str(uuid.uuid4())
        await self.send_frame({"type": "send", "body": body, "client_id": client_id})
        return client_id

    # -- ending --
    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 3)

    def drop(self) -> None:
        """Cut the TCP connection with no closing handshake, like a phone losing signal."""
        self.ws.transport.abort()

    async def close_code(self, timeout: float = 5) -> int | None:
        """Read until the server closes the socket; return its close code."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self.frame(timeout)
        return self.ws.close_code


async def connect_room(
    server: HasUrl | str,
    slug: str,
    cookie: str | None,
    *,
    after: int | None = None,
    origin: str | None = None,
    wait_welcome: bool = True,
    follow_resync: bool = True,
    timeout: float = 10,
) -> RoomSocket:
    """Open `/ws/rooms/<slug>/` with the server's own Origin (or `origin`); by default wait for `welcome`.

    The caller closes it (`await ws.close()`); `open_room` does that for you. Like room.js, the socket answers
    a `resync` notice with `resume` (count them in `.resyncs`); pass follow_resync=False to see it stall instead.
    """
    base = _base(server)
    url = base.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + f"/ws/rooms/{slug}/"
    if after is not None:
        url += f"?after={after}"
    headers = {"Cookie": cookie} if cookie else {}
    ws = await connect(
        url,
        origin=origin or base,  # type: ignore[arg-type]
        additional_headers=headers,
        open_timeout=timeout,
        close_timeout=3,
        ping_interval=None,
        max_size=2**20,
    )
    sock = RoomSocket(ws, url, follow_resync=follow_resync)
    if wait_welcome:
        try:
            sock.welcome = await sock.frame_of("welcome", timeout)
            sock.messages.extend(sock.welcome.get("history") or [])
        except BaseException:
            await sock.close()
            raise
    return sock


@contextlib.asynccontextmanager
async def open_room(server: HasUrl | str, slug: str, cookie: str | None, **kwargs: Any) -> AsyncIterator[RoomSocket]:
    """`async with open_room(server, slug, cookie) as ws:`: connect_room that always closes."""
    sock = await connect_room(server, slug, cookie, **kwargs)
    try:
        yield sock
    finally:
        await sock.close()
