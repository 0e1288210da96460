"""Helpers for socket tests: a real ASGI app (origin check, sessions, routing) driven in-process."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from chat.broadcast import Hub

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
HOST = (b"host", b"127.0.0.1:8000")  # a browser always sends Host; the origin check compares the two


class Client:
    """A WebsocketCommunicator with frame helpers."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.ws = communicator

    async def frame(self, timeout: float = 3) -> dict[str, Any]:
        return json.loads(await self.ws.receive_from(timeout=timeout))

    async def frame_of(self, kind: str, timeout: float = 3) -> dict[str, Any]:
        """Return the next frame of this type, skipping others (presence, notices)."""
        for _ in range(200):
            frame = await self.frame(timeout)
            if frame["type"] == kind:
                return frame
        raise AssertionError(f"no {kind} frame")

    async def send(self, body: str, client_id: str | None = None) -> str:
        client_id = client_id or str(uuid.uuid4())
        await self.ws.send_to(text_data=json.dumps({"type": "send", "body": body, "client_id": client_id}))
        return client_id

    async def raw(self, text: str) -> None:
        await self.ws.send_to(text_data=text)

    async def nothing_more(self, kind: str = "message", timeout: float = 0.3) -> bool:
        """Return True if no frame of this type arrives within `timeout` (other frames are skipped)."""
        while not await self.ws.receive_nothing(timeout=timeout):
            if (await self.frame())["type"] == kind:
                return False
        return True

    async def close(self) -> None:
        await self.ws.disconnect()


async def open_socket(path: str, cookie: str | None, *, origin: tuple[bytes, bytes] | None = ORIGIN):
    from config.asgi import application

    headers = [HOST, origin] if origin else [HOST]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return Client(communicator), connected, code


@pytest.fixture
async def hub_cleanup():
    yield
    hub = Hub.current
    if hub is not None:
        await hub.stop()


def cookie_for(*args: Any, **kwargs: Any):
    from tests.factories import session_cookie_for

    return database_sync_to_async(session_cookie_for)(*args, **kwargs)
