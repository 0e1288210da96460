"""The load generator: worker processes that hold WebSocket clients, send by the clock, and time deliveries.

One worker is one process with one event loop (uvloop when installed). The coordinator
(`bench.fanout`) drives workers over a pipe with small commands: connect clients, run a send
step, report arrivals, close. Several workers share the clients so one Python process is not
the ceiling; whether the generator limited a step is measured and reported (its CPU, how late
it sent), never assumed.

Each client does its opening handshake with `websockets`' sans-I/O `ClientProtocol` (so the
upgrade is checked by the library), then reads frames with the small parser below: the
library's asyncio client costs several times more CPU per received frame, and on a 2-core
machine every microsecond the generator spends is one the server does not get.

Sends are open-loop: message k of a step is due at t0 + k/rate and is sent when due, whatever
came back. Its body carries the *scheduled* send time (time.monotonic_ns is system-wide on
Linux, so every process reads the same clock); latency counts from the schedule, so a late
generator shows up as latency instead of hiding it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import resource
import secrets
import time
import uuid
from array import array
from collections import Counter
from typing import Any

from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.uri import parse_uri

try:
    from websockets.speedups import apply_mask  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - pure-Python fallback
    from websockets.utils import apply_mask

MARKER = b'"bx|'  # a delivered benchmark body starts with this, right after its opening quote
monotonic_ns = time.monotonic_ns


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def load_codec(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


class StepRecord:
    """Arrivals of one step: per message [count, first arrival, last arrival], per delivery latency."""

    __slots__ = ("deadline_ns", "lat_us", "msgs", "ontime")

    def __init__(self, deadline_ns: int = 0) -> None:
        self.msgs: dict[int, list[int]] = {}
        self.lat_us = array("i")
        self.deadline_ns = deadline_ns  # deliveries by then count as keeping up
        self.ontime = 0


class Client(asyncio.Protocol):
    """One WebSocket member of one room."""

    def __init__(self, worker: Worker, idx: int, room: int, port: int, path: str, headers: dict[str, str]) -> None:
        self.worker, self.idx, self.room = worker, idx, room
        self.uri = parse_uri(f"ws://127.0.0.1:{port}{path}")
        self.headers = headers
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.open = False
        self.handshake = True
        self.we_closed = False
        self.closed_by_server = False
        self.close_code: int | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Failures are counted by whoever awaits; don't let an unawaited one warn at exit.
        self.ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.counts: Counter[int] = Counter()  # step -> deliveries this client got
        self.last_id: dict[int, int] = {}  # step -> last message id seen
        self.id_jumps: Counter[int] = Counter()  # step -> times an id skipped ahead
        self.resyncs = 0
        self.frag: bytearray | None = None

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.proto = ClientProtocol(self.uri)
        request = self.proto.connect()
        for k, v in self.headers.items():
            request.headers[k] = v
        self.proto.send_request(request)
        transport.write(b"".join(self.proto.data_to_send()))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.handshake:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 65536:
                    self._fail("handshake response too large")
                return
            head = bytes(self.buf[: end + 4])
            del self.buf[: end + 4]
            self.proto.receive_data(head)
            if self.proto.state is not State.OPEN:
                exc = self.proto.handshake_exc
                why = f"{type(exc).__name__}: {exc}" if exc else repr(head[:60])
                self._fail(f"handshake: {why}"[:160])
                return
            self.handshake = False
            self.open = True
        self._parse()

    def connection_lost(self, exc: Exception | None) -> None:
        was_open = self.open
        self.open = False
        if not self.we_closed:
            self.closed_by_server = True
            if was_open:
                self.worker.closed_by_server += 1
                self.worker.close_codes[str(self.close_code)] += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before ready (code {self.close_code})"))

    # -- frames -------------------------------------------------------------------------
    def _parse(self) -> None:
        buf = self.buf
        n = len(buf)
        pos = 0
        while n - pos >= 2:
            b0 = buf[pos]
            ln = buf[pos + 1] & 0x7F
            hdr = 2
            if ln == 126:
                if n - pos < 4:
                    break
                ln = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                hdr = 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                hdr = 10
            end = pos + hdr + ln
            if end > n:
                break
            payload = bytes(buf[pos + hdr : end])
            pos = end
            opcode = b0 & 0x0F
            if opcode == 1 or opcode == 2:
                if b0 & 0x80:
                    self._on_text(payload)
                else:
                    self.frag = bytearray(payload)
            elif opcode == 0 and self.frag is not None:
                self.frag += payload
                if b0 & 0x80:
                    whole, self.frag = bytes(self.frag), None
                    self._on_text(whole)
            elif opcode == 8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self._write_frame(0x88, payload[:2])
                if self.transport is not None:
                    self.transport.close()
                break
            elif opcode == 9:
                self._write_frame(0x8A, payload)
        del buf[:pos]

    def _on_text(self, payload: bytes) -> None:
        i = payload.find(MARKER)
        if i < 0 or payload.find(b'"welcome"', 0, 40) >= 0:
            # Not a delivery. A welcome can hold earlier benchmark messages in its history (a reconnect after a
            # failed step): it must still count as the welcome, or the handshake never completes.
            self._on_other(payload)
            return
        now = monotonic_ns()
        j = payload.find(b'"', i + 1)
        fields = payload[i + 4 : j].split(b"|")
        step, msgno, tsched = int(fields[0]), int(fields[1]), int(fields[3])
        rec = self.worker.steps.get(step)
        self.worker.last_arrival_ns = now
        self.worker.arrivals += 1
        if rec is None:
            self.worker.stale += 1
            return
        rec.lat_us.append((now - tsched) // 1000)
        if now <= rec.deadline_ns:
            rec.ontime += 1
        e = rec.msgs.get(msgno)
        if e is None:
            rec.msgs[msgno] = [1, now, now]
        else:
            e[0] += 1
            if now > e[2]:
                e[2] = now
        self.counts[step] += 1
        k = payload.find(b'"id":')
        if k >= 0:
            k += 5
            while payload[k] == 32:
                k += 1
            e2 = k
            while 48 <= payload[e2] <= 57:
                e2 += 1
            if e2 > k:
                mid = int(payload[k:e2])
                prev = self.last_id.get(step)
                if prev is not None and mid > prev + 1:
                    self.id_jumps[step] += 1
                if prev is None or mid > prev:
                    self.last_id[step] = mid

    def _on_other(self, payload: bytes) -> None:
        try:
            frame = json.loads(payload)
            kind = frame.get("type")
        except (ValueError, AttributeError):
            self.worker.other["unparsable"] += 1
            return
        if kind == "welcome":
            if not self.ready.done():
                self.ready.set_result(None)
            return
        if kind == "notice":
            code = str(frame.get("code"))
            self.worker.other[f"notice:{code}"] += 1
            if code == "resync":
                self.resyncs += 1
            return
        if kind == "error":
            self.worker.other[f"error:{frame.get('code')}"] += 1
            refused = refusal_of(frame.get("client_id"))
            if refused is not None:  # the server said no to this send (busy, limited): it was never a message
                self.worker.refused.extend(refused)
            return
        self.worker.other[f"frame:{kind}"] += 1

    def _write_frame(self, b0: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        n = len(payload)
        mask = os.urandom(4)
        if n < 126:
            head = bytes((b0, 0x80 | n))
        elif n < 65536:
            head = bytes((b0, 0x80 | 126)) + n.to_bytes(2, "big")
        else:
            head = bytes((b0, 0x80 | 127)) + n.to_bytes(8, "big")
        self.transport.write(head + mask + apply_mask(payload, mask))

    def send_text(self, data: bytes) -> bool:
        if not self.open:
            return False
        self._write_frame(0x81, data)
        return True

    def close(self) -> None:
        self.we_closed = True
        if self.open:
            self._write_frame(0x88, (1000).to_bytes(2, "big"))
        self.open = False
        if self.transport is not None:
            self.transport.close()

    def _fail(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(why))
        self.we_closed = True
        if self.transport is not None:
            self.transport.close()


_RUN_BITS = secrets.randbits(64) << 64  # client_ids stay unique across runs against the same database


def client_id_for(step: int, msgno: int) -> str:
    """A UUID client_id that carries the step and message number, so a refusal naming it can be counted.

    Unique per send: a client_id the server has stored already would be answered as a retry.
    """
    return str(uuid.UUID(int=_RUN_BITS | (step << 40) | msgno))


def refusal_of(client_id: object) -> tuple[int, int] | None:
    """(step, msgno) of one of this worker's sends, from the client_id an error frame names."""
    try:
        value = uuid.UUID(str(client_id)).int
    except ValueError:
        return None
    if value >> 64 != _RUN_BITS >> 64:
        return None
    return (value >> 40) & 0xFFFFFF, value & (2**40 - 1)


class Worker:
    """One generator process: its clients, its steps, its counters."""

    def __init__(self, index: int, codec_path: str) -> None:
        self.index = index
        self.codec = load_codec(codec_path)
        self.clients: list[Client] = []
        self.steps: dict[int, StepRecord] = {}
        self.sent: dict[int, array[int]] = {}  # step -> flat (msgno, room, tsched) triples
        self.arrivals = 0
        self.stale = 0
        self.last_arrival_ns = 0
        self.closed_by_server = 0
        self.close_codes: Counter[str] = Counter()
        self.other: Counter[str] = Counter()
        self.refused: array[int] = array("q")  # flat (step, msgno) pairs of sends refused with an error frame

    async def connect(self, specs: list[dict[str, Any]], port: int, concurrency: int, timeout: float) -> dict[str, Any]:
        """Open one client per spec, at most `concurrency` handshakes at a time."""
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(concurrency)
        errors: Counter[str] = Counter()
        first = len(self.clients)
        for spec in specs:
            self.clients.append(Client(self, len(self.clients), spec["room"], port, spec["path"], spec["headers"]))

        async def one(client: Client) -> None:
            async with sem:
                try:
                    await asyncio.wait_for(loop.create_connection(lambda: client, "127.0.0.1", port), timeout)
                    await asyncio.wait_for(asyncio.shield(client.ready), timeout)
                except (OSError, TimeoutError, ConnectionError) as exc:
                    errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
                    client.close()

        t0 = time.monotonic()
        cpu0 = time.process_time()
        await asyncio.gather(*(one(c) for c in self.clients[first:]))
        idx = list(range(first, len(self.clients)))
        ok = [i for i in idx if self.clients[i].open]
        return {
            "base": first,
            "ok": ok,
            "failed": len(idx) - len(ok),
            "errors": dict(errors),
            "elapsed": time.monotonic() - t0,
            "cpu": time.process_time() - cpu0,
        }

    async def send_step(
        self, step: int, rate: float, duration: float, senders: list[int], t0_ns: int, pad: int, ontime_slack_s: float
    ) -> dict[str, Any]:
        """Send round-robin from `senders` at `rate` per second for `duration`, by the clock."""
        self.steps[step] = StepRecord(t0_ns + int((duration + ontime_slack_s) * 1e9))
        sent = self.sent[step] = array("q")
        total = int(rate * duration)
        lags = array("i")
        unsent = 0
        if total == 0 or not senders:
            return {"sent": 0, "unsent": 0, "lag_p99_ms": 0.0, "lag_max_ms": 0.0, "cpu": 0.0}
        interval = 1e9 / rate
        clients = [self.clients[i] for i in senders]
        filler = "x" * pad
        encode = self.codec.encode_send
        base = self.index * 10_000_000
        await asyncio.sleep(max(0.0, (t0_ns - monotonic_ns()) / 1e9))
        cpu0 = time.process_time()
        k = 0
        deadline = t0_ns + int((duration + 30) * 1e9)
        while k < total:
            now = monotonic_ns()
            if now > deadline:
                break
            due = min(total, int((now - t0_ns) / interval) + 1)
            while k < due:
                tsched = t0_ns + int(k * interval)
                c = clients[k % len(clients)]
                if not c.open:  # a sender the server closed: the next open one speaks instead
                    c = next((x for x in clients if x.open), c)
                msgno = base + k
                body = f"bx|{step}|{msgno}|{c.room}|{tsched}|{filler}"
                if c.send_text(encode(body, client_id_for(step, msgno))):
                    sent.extend((msgno, c.room, tsched))
                    lags.append((now - tsched) // 1000)
                else:
                    unsent += 1
                k += 1
            next_due = t0_ns + int(k * interval)
            await asyncio.sleep(max(0.0005, (next_due - monotonic_ns()) / 1e9))
        cpu = time.process_time() - cpu0
        sl = sorted(lags)
        return {
            "sent": len(sent) // 3,
            "unsent": unsent,
            "lag_p99_ms": sl[int(len(sl) * 0.99)] / 1000 if sl else 0.0,
            "lag_max_ms": sl[-1] / 1000 if sl else 0.0,
            "cpu": cpu,
        }

    def status(self, step: int | None = None) -> dict[str, Any]:
        rec = self.steps.get(step) if step is not None else None
        return {
            "arrivals": self.arrivals,
            "last_arrival_ns": self.last_arrival_ns,
            "step_deliveries": len(rec.lat_us) if rec else 0,
            "open": sum(1 for c in self.clients if c.open),
            "closed_by_server": self.closed_by_server,
            "cpu": time.process_time(),
        }

    def collect(self, step: int) -> dict[str, Any]:
        """Hand over everything recorded for a step and forget it."""
        rec = self.steps.pop(step, StepRecord())
        pairs = self.refused
        refused = array("q", (pairs[i + 1] for i in range(0, len(pairs), 2) if pairs[i] == step))
        self.refused = array("q", (x for i in range(0, len(pairs), 2) if pairs[i] != step for x in pairs[i : i + 2]))
        sent = self.sent.pop(step, array("q"))
        per_client = [
            (c.room, c.counts.pop(step, 0), c.id_jumps.pop(step, 0), c.resyncs, c.closed_by_server)
            for c in self.clients
        ]
        for c in self.clients:
            c.last_id.pop(step, None)
        return {
            "msgs": rec.msgs,
            "lat_us": rec.lat_us.tobytes(),
            "sent": sent.tobytes(),
            "ontime": rec.ontime,
            "per_client": per_client,
            "other": dict(self.other),
            "refused": refused.tobytes(),
            "close_codes": dict(self.close_codes),
        }

    async def close_all(self, wait_s: float) -> dict[str, Any]:
        for c in self.clients:
            c.close()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and any(
            c.transport is not None and not c.transport.is_closing() for c in self.clients
        ):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
        n = len(self.clients)
        self.clients.clear()
        self.closed_by_server = 0
        self.close_codes.clear()
        self.other.clear()
        return {"closed": n}


async def _serve(conn: Any, worker: Worker) -> None:
    loop = asyncio.get_running_loop()
    while True:
        cmd, args = await loop.run_in_executor(None, conn.recv)
        try:
            if cmd == "exit":
                conn.send(("ok", None))
                return
            if cmd == "connect":
                result: Any = await worker.connect(**args)
            elif cmd == "send_step":
                result = await worker.send_step(**args)
            elif cmd == "status":
                result = worker.status(**args)
            elif cmd == "collect":
                result = worker.collect(**args)
            elif cmd == "close_all":
                result = await worker.close_all(**args)
            else:
                raise ValueError(f"unknown command {cmd!r}")
            conn.send(("ok", result))
        except Exception as exc:  # report to the coordinator rather than die silently
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def worker_main(conn: Any, index: int, codec_path: str, use_uvloop: bool) -> None:
    """Entry point of a generator process."""
    raise_fd_limit()
    if use_uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            uvloop.run(_serve(conn, Worker(index, codec_path)))
            return
    asyncio.run(_serve(conn, Worker(index, codec_path)))
