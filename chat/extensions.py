"""Frames that other apps serve on the room socket: one registry, so the consumer stays thin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from chat import protocol

Handler = Callable[[Any, Any, str], Awaitable[list[dict[str, Any]]]]
_HANDLERS: dict[tuple[type, str | None], Handler] = {}


def register(request_type: type, handler: Handler, *, action: str | None = None) -> None:
    """Serve a request type; with `action`, only requests with that action (e.g. `mod` `next`: the chair's call)."""
    _HANDLERS[(request_type, action)] = handler


async def dispatch_extension(join: Any, request: Any, conn_id: str) -> list[dict[str, Any]]:
    action = getattr(request, "action", None)
    handler = _HANDLERS.get((type(request), str(action) if action is not None else None)) or _HANDLERS.get(
        (type(request), None)
    )
    if handler is None:
        return [protocol.error_frame(protocol.ErrorCode.NOT_ALLOWED, "That isn't available in this room.")]
    return await handler(join, request, conn_id)
