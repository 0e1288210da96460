"""The socket under a consumer: how far behind its reader is, and a way to write a ready-made frame.

Under daphne, every member of a room gets the very same bytes for a message (server frames are not
masked, and daphne doesn't negotiate compression), so the hub builds the WebSocket frame once and hands
it to each member's transport: one `transport.write` per member, no per-member coroutine, encoding or
frame building. daphne (Twisted) also buffers whatever it can't send yet, without limit, so the hub asks
how many bytes wait for a member before writing (a member who stops reading is paused and back-filled).

Both are found by walking the ASGI `send` chain (Channels' session wrapper, then daphne's
`partial(handle_reply, protocol)`). Under a test communicator there is no daphne protocol: the finders
return None and the hub falls back to the ordinary ASGI `send`.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any


def encode_text_frame(text: str) -> bytes:
    """Return one final, unmasked WebSocket text frame (RFC 6455 §5.2) carrying `text`."""
    payload = text.encode("utf-8")
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 65536:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


def pending_bytes_probe(send: Any) -> Callable[[], int] | None:
    """Return a function giving the bytes queued for this socket's peer, or None if unknown."""
    protocol = _find_protocol(send, depth=0)
    transport = getattr(protocol, "transport", None)
    if transport is None or not hasattr(transport, "dataBuffer"):
        return None

    return functools.partial(_queued_bytes, transport)


def _queued_bytes(transport: Any) -> int:
    """Bytes Twisted still holds for this socket: the write buffer past its offset, and the pending list."""
    return len(transport.dataBuffer) - getattr(transport, "offset", 0) + getattr(transport, "_tempDataLen", 0)


def frame_writer(send: Any) -> Callable[[bytes], bool] | None:
    """Return a function writing a ready-made frame straight to this socket (False once it's closed)."""
    protocol = _find_protocol(send, depth=0)
    if protocol is None or not hasattr(protocol, "STATE_OPEN") or getattr(protocol, "_perMessageCompress", None):
        return None  # not daphne, or compression negotiated (frames would differ per socket)
    open_state = protocol.STATE_OPEN

    def write(frame: bytes) -> bool:
        transport = protocol.transport
        if protocol.state != open_state or transport is None:
            return False
        if _idle_plain_tcp(transport):
            # Nothing is queued ahead of this frame: send it now, as asyncio's own transports do. Twisted's
            # `write` would buffer it and register the socket for writability (two epoll calls and a reactor
            # pass per member per message) only to send it on the next loop turn.
            try:
                sent = transport.socket.send(frame)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # a dead socket: Twisted's own write below notices and reports the lost connection
            if sent == len(frame):
                return True
            frame = frame[sent:]
        transport.write(frame)  # queued behind what is already waiting, or the part the kernel didn't take
        return True

    return write


def _idle_plain_tcp(transport: Any) -> bool:
    """Whether this is a connected, plain-TCP Twisted transport with nothing waiting to be written."""
    return (
        getattr(transport, "TLS", True) is False
        and getattr(transport, "socket", None) is not None
        and transport.connected
        and not transport.disconnecting
        and not getattr(transport, "_writeDisconnected", True)
        and not _queued_bytes(transport)
    )


def _find_protocol(send: Any, depth: int) -> Any:
    if depth > 6 or send is None:
        return None
    if isinstance(send, functools.partial):
        for arg in send.args:
            if getattr(arg, "transport", None) is not None:
                return arg
        return _find_protocol(send.func, depth + 1)
    owner = getattr(send, "__self__", None)
    if owner is not None:
        return _find_protocol(getattr(owner, "real_send", None), depth + 1)
    return None
