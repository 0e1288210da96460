"""How far behind a socket's reader is: the bytes daphne still holds for it.

daphne (Twisted) buffers whatever it can't write yet, without limit. The hub asks this probe before
writing, so a member who stops reading is paused and later back-filled from the database instead of
growing the server's memory. The probe walks the ASGI `send` chain (Channels' session wrapper, then
daphne's `partial(handle_reply, protocol)`); under a test communicator there is no transport, and the
probe says so by returning None.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def pending_bytes_probe(send: Any) -> Callable[[], int] | None:
    """Return a function giving the bytes queued for this socket's peer, or None if unknown."""
    transport = _find_transport(send, depth=0)
    if transport is None or not hasattr(transport, "dataBuffer"):
        return None

    def pending() -> int:
        buffered = len(transport.dataBuffer) - getattr(transport, "offset", 0)
        return buffered + getattr(transport, "_tempDataLen", 0)

    return pending


def _find_transport(send: Any, depth: int) -> Any:
    if depth > 6 or send is None:
        return None
    if isinstance(send, functools.partial):
        for arg in send.args:
            transport = getattr(arg, "transport", None)
            if transport is not None:
                return transport
        return _find_transport(send.func, depth + 1)
    owner = getattr(send, "__self__", None)
    if owner is not None:
        return _find_transport(getattr(owner, "real_send", None), depth + 1)
    return None
