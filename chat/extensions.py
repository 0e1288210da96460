"""Frames that other apps serve on the room socket: one registry, so the consumer stays thin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from chat import protocol

Handler = Callable[[Any, Any, str], Awaitable[list[dict[str, Any]]]]
_HANDLERS: dict[type, Handler] = {}


def register(request_type: type, handler: Handler) -> None:
    _HANDLERS[request_type] = handler


async def dispatch_extension(join: Any, request: Any, conn_id: str) -> list[dict[str, Any]]:
    handler = _HANDLERS.get(type(request))
    if handler is None:
        return [protocol.error_frame(protocol.ErrorCode.NOT_ALLOWED, "That isn't available in this room.")]
    return await handler(join, request, conn_id)
