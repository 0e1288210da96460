"""Targets: how to start each server fresh, authenticate a client, and name a room.

A target is an adapter; the load generator only ever sees (port, path, headers) per client
and a codec (how to encode a `send` frame). Delivered frames are recognised by their body
(the generator's marker), and `welcome` means a client is in the room, for every target.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench import procs

REPO = Path(__file__).resolve().parent.parent


class JsonCodec:
    """Saathi's `send` frame; the baselines speak the same."""

    @staticmethod
    def encode_send(body: str, client_id: str) -> bytes:
        return json.dumps({"type": "send", "body": body, "client_id": client_id}).encode()


@dataclass
class Context:
    """What every target may use: where to log, and the run's options."""

    logdir: Path
    options: dict[str, object] = field(default_factory=dict)


class Target:
    """Base adapter. Subclasses set how to start, and may override auth and rooms."""

    name = ""
    description = ""
    codec = "bench.targets:JsonCodec"
    uses_redis = False
    # Whether a skipped message id tells a client it missed something (Saathi's ids increase
    # within a room). The baselines' ids are only unique: they have no gap signal at all.
    id_gap_signals = False
    only_scenarios: frozenset[str] | None = None  # a variant measured on some scenarios only

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.port = 0
        self.server: procs.Proc | None = None
        self.redis: procs.PrivateRedis | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self.uses_redis:
            self.redis = procs.PrivateRedis(self.ctx.logdir)
            self.redis.start()
        self.port = procs.free_port()
        self.server = procs.spawn(
            f"{self.name}-{self.port}", self.argv(), env=self.env(), cwd=REPO, logdir=self.ctx.logdir
        )
        procs.wait_port(self.port, timeout=30, proc=self.server.popen)
        self.after_start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.redis is not None:
            self.redis.stop()

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
        env["PYTHONUNBUFFERED"] = "1"
        if self.redis is not None:
            env["REDIS_URL"] = self.redis.url
        return env

    def after_start(self) -> None:
        """Warm up or seed after the port is open."""

    # -- measurement ----------------------------------------------------------------------
    def server_alive(self) -> bool:
        return self.server is not None and self.server.alive()

    def server_cpu(self) -> float:
        return procs.cpu_seconds(self.server.pid) if self.server else 0.0

    def server_rss_kib(self) -> int:
        return procs.rss_kib(self.server.pid) if self.server else 0

    def db_cpu(self) -> float:
        return 0.0

    def redis_cpu(self) -> float:
        return self.redis.cpu_seconds() if self.redis else 0.0

    # -- clients --------------------------------------------------------------------------
    def prepare_rooms(self, slugs: list[str]) -> None:
        """Make sure these rooms exist and are open (nothing to do for the baselines)."""

    def auth_headers(self, n: int, start: int = 0) -> list[dict[str, str]]:
        """Return headers for n distinct clients, numbered from `start` (cookies for Saathi; only Origin here)."""
        return [{"Origin": f"http://127.0.0.1:{self.port}"} for _ in range(n)]

    def room_path(self, slug: str, member: int) -> str:
        return f"/ws/rooms/{slug}/?handle=m{member}"


class Relay(Target):
    name = "relay"
    description = "websockets.broadcast() relay, one process"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "bench.baselines.relay", "--port", str(self.port)]


class TutorialRedis(Target):
    name = "tutorial-redis"
    description = "Channels tutorial consumer, daphne, RedisChannelLayer"
    uses_redis = True
    layer = "redis"

    def argv(self) -> list[str]:
        return [
            str(Path(sys.executable).with_name("daphne")),
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            "bench.baselines.tutorial.asgi:application",
        ]

    def env(self) -> dict[str, str]:
        env = super().env()
        env["DJANGO_SETTINGS_MODULE"] = "bench.baselines.tutorial.settings"
        env["CHANNEL_LAYER"] = self.layer
        return env


class TutorialPubSub(TutorialRedis):
    name = "tutorial-pubsub"
    description = "Channels tutorial consumer, daphne, RedisPubSubChannelLayer"
    layer = "pubsub"


class Saathi(Target):
    """The real server: `manage.py serve` (daphne on config.asgi) with Redis and a database of its own.

    Production-like settings (DJANGO_DEBUG=false, no HTTPS redirect since this is plain 127.0.0.1),
    a private PostgreSQL database created for the run (or a fresh SQLite file when PostgreSQL is
    not reachable), the per-member send limits raised so the benchmark measures fan-out rather
    than the limiter. Clients take a guest pass over HTTP like a browser does.
    """

    name = "saathi"
    description = "Saathi: manage.py serve (daphne, config.asgi), PostgreSQL, private Redis"
    uses_redis = True
    id_gap_signals = True  # message ids are 1, 2, 3... per room: a skipped id is a gap the client sees

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.pg: procs.PrivatePostgres | None = None
        self.db_url = ""
        self.secret = secrets.token_urlsafe(48)
        self.rooms_made: set[str] = set()

    def _manage(self, *args: str, timeout: float = 300) -> str:
        out = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if out.returncode:
            raise RuntimeError(f"manage.py {args[0]} failed: {out.stderr[-2000:]}")
        return out.stdout

    def start(self) -> None:
        if procs.PrivatePostgres.available():
            self.pg = procs.PrivatePostgres(self.ctx.logdir)
            self.pg.start()
            self.db_url = self.pg.url
        else:
            path = self.ctx.logdir / f"saathi-{os.getpid()}-{int(time.time())}.sqlite3"
            print(f"    PostgreSQL binaries not found; using a fresh SQLite file {path}", flush=True)
            self.db_url = f"sqlite:///{path}"
        self.redis = procs.PrivateRedis(self.ctx.logdir)
        self.redis.start()
        self._manage("migrate", "--noinput", timeout=600)
        self._manage("collectstatic", "--noinput", timeout=600)
        self.port = procs.free_port()
        argv = [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.server = procs.spawn(f"saathi-{self.port}", argv, env=self.env(), cwd=REPO, logdir=self.ctx.logdir)
        procs.wait_port(self.port, timeout=60, proc=self.server.popen)

    def stop(self) -> None:
        super().stop()
        if self.pg is not None:
            self.pg.stop()
            self.pg = None

    def db_cpu(self) -> float:
        return self.pg.cpu_seconds() if self.pg else 0.0

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update({
            "DJANGO_SETTINGS_MODULE": "bench.saathi_settings",
            "BENCH_STATIC_ROOT": str(Path(tempfile.gettempdir()) / "saathi-bench" / "static"),
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": self.secret,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SAATHI_SSL_REDIRECT": "false",
            "SAATHI_HSTS_SECONDS": "0",
            "DATABASE_URL": self.db_url,
            "SAATHI_LOG_LEVEL": "WARNING",
            # Raised so the benchmark measures fan-out, not the per-member limiter.
            "SAATHI_SEND_RATE": "1000000/second",
            "SAATHI_FRAMES_PER_MINUTE": "100000000",
            # Every simulated member connects from 127.0.0.1: the per-address caps would refuse them.
            "SAATHI_MAX_SOCKETS_PER_IP": "0",
            "SAATHI_HANDSHAKES_PER_IP": "",
        })  # fmt: skip
        return env

    def prepare_rooms(self, slugs: list[str]) -> None:
        todo = [s for s in slugs if s not in self.rooms_made]
        if not todo:
            return
        code = (
            "from rooms.models import Access, Room\n"
            f"for s in {todo!r}:\n"
            "    Room.objects.get_or_create(slug=s, defaults={'name': s, 'access': Access.OPEN})\n"
        )
        self._manage("shell", "-c", code)
        self.rooms_made.update(todo)

    def auth_headers(self, n: int, start: int = 0) -> list[dict[str, str]]:
        """Take n guest passes the way a browser does: GET the form, POST it, keep the cookies."""
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(self._guest, range(start, start + n)))

    def _guest(self, i: int) -> dict[str, str]:
        origin = f"http://127.0.0.1:{self.port}"
        jar: dict[str, str] = {}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", "/guest/")
            resp = conn.getresponse()
            resp.read()
            _take_cookies(resp, jar)
            token = next((v for k, v in jar.items() if "csrf" in k), "")
            form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "handle": f"b{i:05d}x"})
            conn.request("POST", "/guest/", body=form, headers={
                "Content-Type": "application/x-www-form-urlencoded", "Origin": origin,
                "Referer": f"{origin}/guest/", "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items()),
            })  # fmt: skip
            resp = conn.getresponse()
            body = resp.read()
            _take_cookies(resp, jar)
            if resp.status not in (301, 302, 303) or not any("session" in k for k in jar):
                raise RuntimeError(f"guest pass refused: HTTP {resp.status} {body[:200]!r}")
        finally:
            conn.close()
        return {"Origin": origin, "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}

    def room_path(self, slug: str, member: int) -> str:
        return f"/ws/rooms/{slug}/"


def _take_cookies(resp: http.client.HTTPResponse, jar: dict[str, str]) -> None:
    for header in resp.headers.get_all("Set-Cookie") or []:
        name, _, rest = header.partition("=")
        jar[name.strip()] = rest.split(";", 1)[0]


class SaathiNoStore(Saathi):
    """Saathi with persistence and the crisis scan switched off (bench/nostore.py), for the on-vs-off row."""

    name = "saathi-nostore"
    description = "Saathi as above, but messages neither stored nor scanned (bench/nostore.py)"
    only_scenarios = frozenset({"room200", "rooms25"})  # capacity is all it is for

    def env(self) -> dict[str, str]:
        env = super().env()
        env["BENCH_SEND_STORE"] = "bench.nostore.post_messages"
        return env


TARGETS: dict[str, type[Target]] = {t.name: t for t in (Relay, TutorialRedis, TutorialPubSub, Saathi, SaathiNoStore)}
BASELINES = ("relay", "tutorial-redis", "tutorial-pubsub")
