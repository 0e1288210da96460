"""The hub's frame writer: a ready-made frame reaches the member's socket whole and in order.

A real socket pair stands under a stand-in for daphne's protocol and Twisted's TCP transport (the same
attributes Twisted keeps: a write buffer, its offset, and the pending list), so these tests show what
the peer actually reads.
"""

from __future__ import annotations

import functools
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from chat.transport import encode_text_frame, frame_writer, pending_bytes_probe


class FakeTwistedTransport:
    TLS = False

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self.connected = True
        self.disconnecting = False
        self._writeDisconnected = False
        self.dataBuffer = b""
        self.offset = 0
        self._tempDataBuffer: list[bytes] = []
        self._tempDataLen = 0

    def write(self, data: bytes) -> None:  # Twisted buffers and sends on the next reactor turn
        self._tempDataBuffer.append(data)
        self._tempDataLen += len(data)

    def flush(self) -> None:
        data = self.dataBuffer[self.offset :] + b"".join(self._tempDataBuffer)
        self.dataBuffer, self.offset, self._tempDataBuffer, self._tempDataLen = b"", 0, [], 0
        self.socket.setblocking(True)
        self.socket.sendall(data)
        self.socket.setblocking(False)


class FakeDaphneProtocol:
    STATE_OPEN = 3
    _perMessageCompress = None

    def __init__(self, transport: FakeTwistedTransport) -> None:
        self.transport = transport
        self.state = self.STATE_OPEN


def handle_reply(protocol: FakeDaphneProtocol, message: dict) -> None:
    raise AssertionError("the frame writer must not go through the ASGI send path")


@pytest.fixture
def member():
    server, peer = socket.socketpair()
    server.setblocking(False)
    transport = FakeTwistedTransport(server)
    protocol = FakeDaphneProtocol(transport)
    send = functools.partial(handle_reply, protocol)
    yield transport, protocol, send, peer
    server.close()
    peer.close()


def read_exactly(peer: socket.socket, n: int) -> bytes:
    peer.settimeout(5)
    data = b""
    while len(data) < n:
        chunk = peer.recv(n - len(data))
        assert chunk, "the socket closed early"
        data += chunk
    return data


def test_an_idle_socket_gets_the_frame_at_once(member):
    transport, _protocol, send, peer = member
    write = frame_writer(send)
    frame = encode_text_frame('{"type":"message","id":1}')
    assert write(frame) is True
    assert transport._tempDataLen == 0  # nothing left waiting for the reactor
    assert read_exactly(peer, len(frame)) == frame


def test_a_frame_waits_behind_what_is_already_queued(member):
    transport, _protocol, send, peer = member
    write = frame_writer(send)
    first, second = encode_text_frame("welcome"), encode_text_frame("message 1")
    transport.write(first)  # e.g. the welcome frame, still in Twisted's buffer
    write(second)
    assert pending_bytes_probe(send)() == len(first) + len(second)
    transport.flush()
    assert read_exactly(peer, len(first) + len(second)) == first + second


def test_what_the_kernel_does_not_take_is_queued_not_lost(member):
    transport, _protocol, send, peer = member
    write = frame_writer(send)
    big = encode_text_frame("x" * 60_000)
    frames = [big] * 40  # far more than a socket pair's kernel buffer
    for frame in frames:
        write(frame)
    assert transport._tempDataLen > 0
    with ThreadPoolExecutor(1) as reader:  # the peer reads while the rest is flushed
        received = reader.submit(read_exactly, peer, len(big) * len(frames))
        transport.flush()
        assert received.result(timeout=10) == b"".join(frames)


def test_a_closing_socket_is_not_written(member):
    _transport, protocol, send, peer = member
    write = frame_writer(send)
    protocol.state = protocol.STATE_OPEN + 1
    assert write(encode_text_frame("late")) is False
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(10)
