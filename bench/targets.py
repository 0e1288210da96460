"""Targets: how to start each server fresh, authenticate a client, and name a room.

A target is an adapter; the load generator only ever sees (port, path, headers) per client
and a codec (how to encode a `send` frame). Delivered frames are recognised by their body
(the generator's marker), and `welcome` means a client is in the room, for every target.
"""

from __future__ import annotations

import json
import os
import sys
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

    def redis_cpu(self) -> float:
        return self.redis.cpu_seconds() if self.redis else 0.0

    # -- clients --------------------------------------------------------------------------
    def prepare_rooms(self, slugs: list[str]) -> None:
        """Make sure these rooms exist and are open (nothing to do for the baselines)."""

    def auth_headers(self, n: int) -> list[dict[str, str]]:
        """Return headers for n distinct clients (cookies for Saathi; only Origin here)."""
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


TARGETS: dict[str, type[Target]] = {t.name: t for t in (Relay, TutorialRedis, TutorialPubSub)}
BASELINES = ("relay", "tutorial-redis", "tutorial-pubsub")
