"""daphne, trimmed for many idle sockets: what it keeps per connection once a WebSocket is open.

A room holds hundreds of sockets that mostly sit idle, so per-socket memory is what limits a process.
Unchanged, daphne keeps per socket an `asyncio.Queue` (three deques and an Event, ~2 KiB even when
empty) and, after the handshake, the whole upgrade request: Twisted's HTTP channel stays registered as
the transport's producer (holding its request, headers and body buffer) and autobahn keeps the raw and
parsed handshake. None of it is read once the socket is open. `manage.py serve` runs this Server.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from twisted.web.http import HTTPChannel


class InputQueue:
    """The application's input queue: what daphne needs of `asyncio.Queue` (unbounded FIFO), much smaller."""

    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        # Lists, not deques: an empty deque is ~600 bytes, and a socket's queue is empty nearly always.
        self._items: list[Any] = []
        self._getters: list[asyncio.Future[None]] = []

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        self._wake_next()

    async def get(self) -> Any:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                # Cancelled: let another getter take an item this one was woken for, as asyncio.Queue does.
                if getter in self._getters:
                    self._getters.remove(getter)
                if self._items:
                    self._wake_next()
                raise
        return self._items.pop(0)  # O(n), but n is a handful of frames at most

    def _wake_next(self) -> None:
        while self._getters:
            getter = self._getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return


class LeanServer(Server):  # type: ignore[misc]  # daphne has no type hints
    """daphne's Server with a smaller input queue, and the handshake let go once a WebSocket opens."""

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> InputQueue | None:
        # daphne's own body, with InputQueue in place of asyncio.Queue.
        assert "application_instance" not in self.connections[protocol]
        input_queue = InputQueue()
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(
            scope=scope, receive=input_queue.get, send=partial(self.handle_reply, protocol)
        )
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            application_instance, loop=asyncio.get_event_loop()
        )
        if isinstance(protocol, WebSocketProtocol):
            protocol.is_open.addCallback(lambda _: release_handshake(protocol))
        return input_queue


def release_handshake(protocol: WebSocketProtocol) -> None:
    """Drop what an open WebSocket still references of its HTTP upgrade request (~4 KiB per socket)."""
    transport = protocol.transport
    # Twisted's HTTP channel registered itself as the TCP transport's producer before daphne took the
    # connection over; it would stay alive, with its request, for as long as the socket. As producer it
    # does nothing for a WebSocket (its request never finishes, so it never pauses the transport).
    if isinstance(getattr(transport, "producer", None), HTTPChannel):
        transport.unregisterProducer()
    # autobahn's copies of the handshake, only read while it is processed; daphne keeps `request` for
    # its log lines, which use only the path.
    protocol.http_request_data = protocol.http_response_data = protocol.http_status_line = None
    protocol.http_headers = protocol.request.headers = {}
