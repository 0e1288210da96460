"""Fault-injection helpers for tests/system/test_faults.py (issue #6, "Faults").

- `PrivateRedis`: a redis-server of our own on a free port, no persistence, that we can SIGKILL and start
  again empty. The shared Redis is never touched.
- `PrivatePostgres`: a throw-away PostgreSQL cluster (initdb in a temp dir, run as the `postgres` OS user)
  that we can stop and start. The shared PostgreSQL is never touched.
- `BlackHoleProxy`: a TCP proxy on 127.0.0.1 that can be switched to drop every byte in both directions
  without a FIN or RST to either side: a phone that walked out of coverage.
- `Store`: reads a room's head and rows straight from PostgreSQL (psycopg, a new connection per read, so it
  works across a database restart). The oracles are always checked against it.
- `Client` / `Meeting`: a model of the browser (static/saathi/room.js): one socket, reconnects with backoff
  and `?after=<last id>`, keeps every unacknowledged send and retries it with the same client_id after a
  reconnect and after an `unavailable` error, answers `resync` with `resume`. It records what it was
  acknowledged, every id it received, and what it "holds on screen" (deduplicated by id, as the browser).

Nothing here touches Django: the servers are real processes, reached over the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.conftest import skip_or_fail
from tests.system.conftest import BASE_DIR, free_port
from tests.system.helpers import guest_cookie

PG_BIN = Path(os.environ.get("SAATHI_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = shutil.which("redis-server")


def need(reason: str | None) -> None:
    """Skip with `reason` (fail under CI=true, where every fault must run)."""
    if reason is not None:
        skip_or_fail(reason)


def _now() -> float:
    return time.monotonic()


# --- A private Redis ------------------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of our own: no RDB, no AOF, so a restart after SIGKILL starts empty."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"redis-{self.port}.log"

    @staticmethod
    def missing() -> str | None:
        return None if REDIS_SERVER else "redis-server is not installed (needed for a private Redis to kill)"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15) -> None:
        assert REDIS_SERVER
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.workdir)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        deadline = _now() + timeout
        while _now() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"private redis exited: {self.log_path.read_text()[-2000:]}")
            if self.command("PING") == "+PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("private redis did not answer PING")

    def kill(self) -> None:
        """SIGKILL: Redis vanishes with everything it held (subscriptions, cache keys, rate-limit counters)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def command(self, *parts: str) -> str | None:
        """Send one inline command; return the first reply line, or None if Redis is not there."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall((" ".join(parts) + "\r\n").encode())
                return sock.recv(65536).decode(errors="replace").split("\r\n")[0]
        except OSError:
            return None

    def pubsub_clients(self) -> list[str]:
        """Return 'sub=N' of every connection that subscribes to something (CLIENT LIST), for a diagnosis."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b"CLIENT LIST\r\n")
                time.sleep(0.2)
                text = sock.recv(1 << 20).decode(errors="replace")
        except OSError:
            return []
        fields = [dict(f.split("=", 1) for f in line.split() if "=" in f) for line in text.splitlines()]
        return [f"sub={f['sub']} cmd={f.get('cmd')}" for f in fields if f.get("sub", "0") != "0"]

    def numsub(self, channel: str) -> int:
        """Return how many connections are subscribed to `channel` (PUBSUB NUMSUB)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(f"PUBSUB NUMSUB {channel}\r\n".encode())
                reply = sock.recv(65536).decode(errors="replace").split("\r\n")
                return int(reply[-2].lstrip(":"))  # *2, $len, channel, :count
        except (OSError, ValueError, IndexError):
            return -1


# --- A private PostgreSQL cluster ---------------------------------------------------------------------------


class PrivatePostgres:
    """A throw-away cluster in a temp dir on a free port, run as the `postgres` OS user (it refuses root)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="saathi-faults-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.log_path = self.dir / "postgres.log"

    @staticmethod
    def missing() -> str | None:
        if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
            return f"PostgreSQL server binaries not found in {PG_BIN} (set SAATHI_PG_BIN)"
        if os.geteuid() == 0 and not shutil.which("runuser"):
            return "runuser is needed to run a private PostgreSQL as the postgres user"
        if os.geteuid() != 0:
            try:
                import pwd

                if pwd.getpwuid(os.geteuid()).pw_name != "postgres":
                    return "a private PostgreSQL needs root (to runuser -u postgres) or the postgres user"
            except KeyError:
                return "unknown OS user"
        return None

    def _run(self, *argv: str, timeout: float = 90) -> None:
        cmd = [str(PG_BIN / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, user="postgres", group="postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        # fsync off: this cluster only ever loses its processes, never the machine, so the OS still holds every
        # committed write. synchronous_commit stays on: a commit is acknowledged only once its WAL is written.
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off "
            "-c max_connections=100"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "immediate") -> None:
        """Stop the cluster. `immediate` is a crash: backends die mid-transaction, recovery runs on start."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def createdb(self, name: str) -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def destroy(self) -> None:
        self.stop("immediate")
        print(f"===== private PostgreSQL on port {self.port} =====\n{self.log_tail()}")
        shutil.rmtree(self.dir, ignore_errors=True)


def prepare_database(url: str, slugs: Sequence[str]) -> None:
    """Migrate the database at `url` and create an open room per slug, in a subprocess (not this test's DB)."""
    script = (
        "import sys, django; django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0, interactive=False)\n"
        "from tests.factories import make_room\n"
        "for slug in sys.argv[1:]: make_room(slug=slug)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings", "REDIS_URL": ""})
    done = subprocess.run(
        [sys.executable, "-c", script, *slugs], cwd=BASE_DIR, env=env, timeout=180, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"could not prepare {url}: {done.stderr[-3000:]}")


# --- Reading the truth -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    seq: int
    client_id: str
    body: str
    state: str


class Store:
    """The database, read directly: a new connection per read, so it survives a PostgreSQL restart."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url, connect_timeout=5, autocommit=True) as conn:
            return list(conn.execute(sql, params).fetchall())

    def heads(self, slugs: Sequence[str]) -> dict[str, int]:
        rows = self._query("SELECT slug, last_seq FROM rooms_room WHERE slug = ANY(%s)", (list(slugs),))
        return {slug: int(seq) for slug, seq in rows}

    def rows(self, slugs: Sequence[str]) -> dict[str, list[Row]]:
        found = self._query(
            "SELECT r.slug, m.seq, m.client_id::text, m.body, m.state FROM chat_message m "
            "JOIN rooms_room r ON r.id = m.room_id WHERE r.slug = ANY(%s) ORDER BY r.slug, m.seq",
            (list(slugs),),
        )
        out: dict[str, list[Row]] = {slug: [] for slug in slugs}
        for slug, seq, client_id, body, state in found:
            out[slug].append(Row(int(seq), client_id, body, state))
        return out

    async def aheads(self, slugs: Sequence[str]) -> dict[str, int]:
        return await asyncio.to_thread(self.heads, slugs)

    async def arows(self, slugs: Sequence[str]) -> dict[str, list[Row]]:
        return await asyncio.to_thread(self.rows, slugs)


# --- A black hole --------------------------------------------------------------------------------------------


class BlackHoleProxy:
    """Forward 127.0.0.1:<port> to a server; `black_hole()` then swallows every byte both ways, silently.

    After the switch nothing reaches either side and neither side is told: no FIN, no RST. If the server
    gives up on the connection, the proxy notes when (`server_closed_at`) and still says nothing to the client.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.holed_at: float | None = None
        self.server_closed_at: list[float] = []
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> BlackHoleProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def black_hole(self) -> None:
        self.holed_at = _now()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_w.close()
            return
        self._writers += [client_w, server_w]
        for reader, writer, from_server in ((client_r, server_w, False), (server_r, client_w, True)):
            task = asyncio.create_task(self._pump(reader, writer, from_server))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, from_server: bool) -> None:
        try:
            while data := await reader.read(65536):
                if self.holed_at is None:
                    writer.write(data)
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        if self.holed_at is not None:
            if from_server:
                self.server_closed_at.append(_now())
            return  # the other side hears nothing: that is the point
        writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# --- The client model ----------------------------------------------------------------------------------------

BACKOFF_BASE = 0.25  # seconds; doubled per failed attempt, capped, with jitter (room.js: 0.5 s doubling to 30 s)
BACKOFF_CAP = 4.0  # a test can't wait 30 s per attempt; the shape is the browser's
RETRY_UNAVAILABLE_AFTER = 2.0  # room.js retries an `unavailable` send after 2 s
FINAL_CLOSE_CODES = {4401, 4403, 4404}


@dataclass
class Outgoing:
    client_id: str
    body: str
    created: float
    tries: int = 0
    acked_id: int | None = None
    acked_at: float | None = None


def ws_url(base: str, slug: str, after: int | None) -> str:
    url = base.replace("http://", "ws://", 1) + f"/ws/rooms/{slug}/"
    return url if after is None else f"{url}?after={after}"


class Client:
    """One member's browser tab, modelled: see the module docstring. Run it with `start()`; stop with `stop()`."""

    def __init__(
        self,
        *,
        name: str,
        cookie: str,
        slug: str,
        servers: Sequence[str],
        home: int = 0,
        sticky: bool = True,
        connect_kwargs: dict[str, Any] | None = None,
        sock_factory: Callable[[str], socket.socket] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.name, self.cookie, self.slug = name, cookie, slug
        self.servers = list(servers)
        self.home = home
        self.sticky = sticky  # reconnect to the same process (True) or move to the next one first (False)
        self.connect_kwargs = connect_kwargs or {}
        self.sock_factory = sock_factory  # a socket made for each connection (e.g. with a tiny receive buffer)
        self.reading = asyncio.Event()  # clear it to stop reading the socket (a member who stops reading)
        self.reading.set()
        self.rng = rng or random.Random(name)
        self.ws: ClientConnection | None = None
        self.open = False
        self.handle: str | None = None
        # What the member holds: every id shown once (the browser's `seen`), and the highest one (`lastId`).
        self.floor: int | None = None  # ids above this are expected (set at the first welcome)
        self.seen: set[int] = set()
        self.last_id = 0
        self.contig = 0  # every id in floor+1..contig has arrived
        self.arrivals: dict[int, float] = {}
        self.bodies: dict[int, str] = {}
        self.wire_duplicates = 0  # a peer's message arriving again (shown once; counted to report)
        self.echoes = 0  # our own message arriving again: the answer to a retried client_id
        self.disorder: list[tuple[int, int]] = []  # (expected, got) for a peer's message that skipped ahead
        # What it sent.
        self.outbox: dict[str, Outgoing] = {}  # sent, not yet acknowledged
        self.acked: dict[str, Outgoing] = {}
        self.ack_mismatch: list[tuple[str, int, int]] = []
        self.errors: Counter[str] = Counter()
        self.refused: list[dict[str, Any]] = []  # errors about a send that are not `unavailable`
        self.unhandled: list[dict[str, Any]] = []  # errors with no client_id (e.g. "could not be handled")
        # Its connection history.
        self.welcomes: list[float] = []
        self.drops: list[tuple[float, int | None]] = []  # (when, close code)
        self.failed_connects = 0
        self.presence: list[str] = []
        self.presence_log: list[tuple[float, list[str]]] = []
        self.resyncs = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._final = False
        self._sent_count = 0
        self.servers_used: list[int] = []

    # -- life cycle --
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"client {self.name}")

    async def stop(self) -> None:
        self._stopping = True
        ws = self.ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 3)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def _server_for(self, attempt: int, reconnect: bool) -> int:
        first = self.home if (self.sticky or not reconnect) else self.home + 1
        return (first + (0 if self.sticky else attempt)) % len(self.servers)

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping and not self._final:
            index = self._server_for(attempt, reconnect=bool(self.welcomes))
            welcomed_before = len(self.welcomes)
            try:
                await self._session(index)
            except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed):
                self.failed_connects += 1
            if self._stopping or self._final:
                break
            attempt = 0 if len(self.welcomes) > welcomed_before else attempt + 1
            delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(attempt, 6)) * (0.5 + self.rng.random())
            await asyncio.sleep(delay)

    async def _session(self, index: int) -> None:
        after = self.last_id if self.welcomes else None  # once in the room, always resume (even after=0)
        extra = dict(self.connect_kwargs)
        if self.sock_factory is not None:
            extra["sock"] = await asyncio.to_thread(self.sock_factory, self.servers[index])
        ws = await connect(
            ws_url(self.servers[index], self.slug, after),
            origin=self.servers[index],  # type: ignore[arg-type]
            additional_headers={"Cookie": self.cookie},
            open_timeout=20,
            close_timeout=2,
            ping_interval=None,  # the server pings; the library answers while we read
            max_size=2**20,
            **extra,
        )
        self.ws = ws
        self.servers_used.append(index)
        try:
            async for raw in ws:
                if not self.reading.is_set():
                    await self.reading.wait()
                self._on_frame(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            self.open = False
            self.ws = None
            self.drops.append((_now(), ws.close_code))
            if ws.close_code in FINAL_CLOSE_CODES:
                self._final = True

    # -- frames in --
    def _on_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "message":
            self._show(frame)
        elif kind == "welcome":
            self.open = True
            self.welcomes.append(_now())
            self.handle = frame["you"]["handle"]
            if self.floor is None:
                history = frame.get("history") or []
                self.floor = history[0]["id"] - 1 if history else int(frame["last_id"])
                self.last_id = self.contig = self.floor
                for message in history:
                    self._show(message)
            for client_id in list(self.outbox):  # retry anything unsent, same client_id (as room.js)
                self._transmit(client_id)
        elif kind == "presence":
            self.presence = list(frame.get("handles") or [])
            self.presence_log.append((_now(), self.presence))
        elif kind == "notice" and frame.get("code") == "resync":
            self.resyncs += 1
            self._send_frame({"type": "resume", "after": self.last_id})
        elif kind == "error":
            self.errors[frame.get("code", "?")] += 1
            client_id = frame.get("client_id")
            if client_id and frame.get("code") == "unavailable":
                asyncio.get_running_loop().call_later(RETRY_UNAVAILABLE_AFTER, self._transmit, client_id)
            elif client_id:
                self.refused.append(frame)
            else:
                self.unhandled.append(frame)

    def _show(self, frame: dict[str, Any]) -> None:
        seq = int(frame["id"])
        own = frame.get("client_id")
        now = _now()
        if own is not None:
            pending = self.outbox.pop(own, None)
            if pending is not None:
                pending.acked_id, pending.acked_at = seq, now
                self.acked[own] = pending
            elif own in self.acked and self.acked[own].acked_id != seq:
                self.ack_mismatch.append((own, self.acked[own].acked_id or 0, seq))
        if seq in self.seen:
            if own is not None:
                self.echoes += 1
            else:
                self.wire_duplicates += 1
            return
        if own is None and seq != self.contig + 1:
            self.disorder.append((self.contig + 1, seq))
        self.seen.add(seq)
        self.arrivals[seq] = now
        self.bodies[seq] = frame.get("body", "")
        self.last_id = max(self.last_id, seq)
        while self.contig + 1 in self.seen:
            self.contig += 1

    def drop(self) -> None:
        """Cut the TCP connection with no closing handshake (a phone changing networks); it will reconnect."""
        ws = self.ws
        if ws is not None:
            ws.transport.abort()

    # -- frames out --
    def send(self, body: str) -> str:
        client_id = str(uuid.uuid4())
        self.outbox[client_id] = Outgoing(client_id=client_id, body=body, created=_now())
        self._sent_count += 1
        self._transmit(client_id)
        return client_id

    def _transmit(self, client_id: str) -> None:
        pending = self.outbox.get(client_id)
        if pending is None or not self.open:
            return  # acknowledged meanwhile, or offline: the next welcome retries it
        pending.tries += 1
        self._send_frame({"type": "send", "body": pending.body, "client_id": client_id})

    def _send_frame(self, frame: dict[str, Any]) -> None:
        ws = self.ws
        if ws is None:
            return

        async def send() -> None:
            with contextlib.suppress(Exception):  # a dying socket: the reconnect path takes over
                await ws.send(json.dumps(frame, ensure_ascii=False))  # as JSON.stringify: UTF-8, not \\u escapes

        asyncio.get_running_loop().create_task(send())

    # -- what it holds --
    def holds(self, upto: int) -> bool:
        """Whether it is connected and holds every id up to `upto`."""
        return self.open and self.contig >= upto

    def screen(self) -> list[int]:
        return sorted(self.seen)


class Meeting:
    """Many clients in several rooms, each sending now and then, as one test's load."""

    def __init__(self, clients: list[Client]) -> None:
        self.clients = clients
        self.rooms = sorted({c.slug for c in clients})
        self._talkers: list[asyncio.Task[None]] = []
        self.talking = False

    def in_room(self, slug: str) -> list[Client]:
        return [c for c in self.clients if c.slug == slug]

    async def connect_all(self, timeout: float = 60) -> None:
        for client in self.clients:
            client.start()
            await asyncio.sleep(0.01)  # don't open a hundred handshakes in one tick on two loaded cores
        try:
            await wait_until(lambda: all(c.open for c in self.clients), timeout, "every client connected")
        except AssertionError:
            closed = [c for c in self.clients if not c.open]
            codes = Counter(code for c in closed for _, code in c.drops)
            raise AssertionError(
                f"{len(closed)} of {len(self.clients)} clients not connected after {timeout:.0f}s; close codes "
                f"{dict(codes)}, failed handshakes {sum(c.failed_connects for c in closed)}, "
                f"errors {dict(sum((c.errors for c in closed), start=Counter()))}"
            ) from None
        await asyncio.sleep(TICK_GRACE)

    def start_talking(self, every: tuple[float, float], filler: int = 40) -> None:
        self.talking = True

        async def talk(client: Client) -> None:
            n = 0
            await asyncio.sleep(client.rng.uniform(0, every[1]))
            while self.talking:
                n += 1
                client.send(f"{client.name} #{n} " + "x" * filler)
                await asyncio.sleep(client.rng.uniform(*every))

        self._talkers = [asyncio.create_task(talk(c)) for c in self.clients]

    async def stop_talking(self) -> None:
        self.talking = False
        for task in self._talkers:
            task.cancel()
        await asyncio.gather(*self._talkers, return_exceptions=True)

    async def settle(self, store: Store, timeout: float, clients: Sequence[Client] | None = None) -> dict[str, int]:
        """Wait until every send is acknowledged and every client holds its room's head; return the heads."""
        deadline = _now() + timeout
        heads: dict[str, int] = {}
        waiting = list(self.clients if clients is None else clients)
        while _now() < deadline:
            with contextlib.suppress(Exception):
                heads = await store.aheads(self.rooms)
                if all(not c.outbox and c.holds(heads[c.slug]) for c in waiting):
                    await asyncio.sleep(1.0)  # late duplicates would show here
                    return await store.aheads(self.rooms)
            await asyncio.sleep(0.5)
        return heads

    async def close(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.clients), return_exceptions=True)


TICK_GRACE = 0.5


async def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.1) -> float:
    """Poll `check` until it holds; return how long it took. Raise AssertionError after `timeout`."""
    start = _now()
    while not check():
        if _now() - start > timeout:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        await asyncio.sleep(every)
    return _now() - start


async def guest_cookies(servers: Sequence[str], count: int, *, handles: Sequence[str] | None = None) -> list[str]:
    """Take `count` guest passes over real HTTP, a few at a time, spread over the servers."""
    gate = asyncio.Semaphore(6)

    async def one(i: int) -> str:
        async with gate:
            handle = handles[i] if handles and i < len(handles) else None
            return await asyncio.to_thread(guest_cookie, servers[i % len(servers)], handle=handle)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


# --- Oracles ---------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """What the run did, measured against the database. `problems` must be empty."""

    sent: int = 0
    acknowledged: int = 0
    stored: int = 0
    unacknowledged_at_end: int = 0
    acknowledged_lost: int = 0
    stored_twice: int = 0
    members_with_gaps: int = 0
    members_with_duplicates_on_screen: int = 0  # impossible by construction (a set), kept for the report
    wire_duplicates: int = 0
    echoes: int = 0
    disorder: int = 0
    half_written_rooms: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        keys = ("sent", "acknowledged", "stored", "unacknowledged_at_end", "acknowledged_lost", "stored_twice",
                "members_with_gaps", "wire_duplicates", "echoes", "disorder", "half_written_rooms")  # fmt: skip
        return ", ".join(f"{k}={getattr(self, k)}" for k in keys)


def check_against_database(clients: Sequence[Client], rows: dict[str, list[Row]], heads: dict[str, int]) -> Verdict:
    """The oracles: every acknowledged send stored under the id it was acknowledged with, nothing stored twice,
    numbers without holes, and every member holding every id of its room exactly once."""
    v = Verdict()
    by_cid: dict[str, Row] = {}
    for slug, room_rows in rows.items():
        seqs = [r.seq for r in room_rows]
        if seqs != list(range(1, len(seqs) + 1)) or heads.get(slug, -1) != len(seqs):
            v.half_written_rooms += 1
            v.problems.append(f"{slug}: stored numbers {seqs[:3]}…{seqs[-3:]} ({len(seqs)}) vs head {heads.get(slug)}")
        bodies = Counter(r.body for r in room_rows)
        v.stored_twice += sum(n - 1 for n in bodies.values() if n > 1)
        v.stored += len(room_rows)
        for r in room_rows:
            by_cid[r.client_id] = r
    for c in clients:
        v.sent += c._sent_count
        v.acknowledged += len(c.acked)
        v.unacknowledged_at_end += len(c.outbox)
        for cid, out in c.acked.items():
            row = by_cid.get(cid)
            if row is None or row.seq != out.acked_id or row.body != out.body:
                v.acknowledged_lost += 1
        v.wire_duplicates += c.wire_duplicates
        v.echoes += c.echoes
        v.disorder += len(c.disorder)
        floor = c.floor or 0
        expected = list(range(floor + 1, heads.get(c.slug, 0) + 1))
        if c.screen() != expected:
            v.members_with_gaps += 1
            missing = sorted(set(expected) - c.seen)
            extra = sorted(c.seen - set(expected))
            v.problems.append(f"{c.name}: missing {missing[:10]} ({len(missing)}), unexpected {extra[:10]}")
        stored = {r.seq: r.body for r in rows.get(c.slug, [])}
        wrong = [seq for seq, body in c.bodies.items() if stored.get(seq) != body]
        if wrong:
            v.problems.append(f"{c.name}: ids {wrong[:5]} carried another text than the database holds")
        if c.ack_mismatch:
            v.problems.append(f"{c.name}: a retried client_id came back with another id: {c.ack_mismatch[:3]}")
    if v.acknowledged_lost:
        v.problems.append(f"{v.acknowledged_lost} acknowledged messages are not in the database as acknowledged")
    if v.stored_twice:
        v.problems.append(f"{v.stored_twice} messages stored twice")
    if v.unacknowledged_at_end:
        v.problems.append(f"{v.unacknowledged_at_end} sends never acknowledged after recovery")
    if v.disorder:
        v.problems.append(f"{v.disorder} peer messages arrived ahead of an earlier one")
    return v


def delivery_latencies(clients: Sequence[Client], since: float, until: float) -> list[float]:
    """Seconds from a send (made in [since, until)) to its arrival at each other member of the room."""
    out: list[float] = []
    rooms: dict[str, list[Client]] = {}
    for c in clients:
        rooms.setdefault(c.slug, []).append(c)
    for c in clients:
        for sent in c.acked.values():
            if since <= sent.created < until and sent.acked_id is not None:
                out += [
                    m.arrivals[sent.acked_id] - sent.created
                    for m in rooms[c.slug]
                    if m is not c and sent.acked_id in m.arrivals
                ]
    return out


def spread(values: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / max, rounded, for a report."""
    if not values:
        return {}
    return {"p50": round(percentile(values, 0.5), 3), "p95": round(percentile(values, 0.95), 3),
            "max": round(max(values), 3), "n": len(values)}  # fmt: skip


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def tiny_receive_buffer(rcvbuf: int = 4096) -> Callable[[str], socket.socket]:
    """Return a socket factory whose connections advertise a tiny receive window (no autotuning), so a client
    that stops reading backs the server's own buffer up quickly instead of filling megabytes of kernel memory."""

    def make(base_url: str) -> socket.socket:
        host, port = base_url.rsplit("/", 1)[-1].split(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(10)
        sock.connect((host, int(port)))
        sock.setblocking(False)
        return sock

    return make


def log_lines(servers: Sequence[Any], needle: str) -> list[str]:
    """Return every line of the servers' logs that contains `needle`."""
    return [line for s in servers for line in s.log_text().splitlines() if needle in line]
