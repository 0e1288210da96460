"""System-test fixtures: real daphne processes on the test database, carried by real Redis.

Every test under tests/system is marked `system` (see `pytest_collection_modifyitems` below). Run them with

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/pytest tests/system -m system

Fixtures (all function-scoped):

- `live_db` -> dict: the test database's settings, committed and visible to other processes (pytest-django's
  `transactional_db`). PostgreSQL only: skips on SQLite (fails under CI=true). Rows you create in the test
  with the ORM are seen by the servers, and the servers' rows by the test.
- `start_servers(count=2, **env)` -> list[Server]: start `count` `manage.py serve` processes on free ports,
  sharing the test database and Redis, and wait until each answers /healthz. Extra keyword arguments become
  environment variables of the servers (`start_servers(1, SAATHI_SEND_RATE="5/minute")`). They are always
  stopped when the test ends, pass or fail.
- `daphne_server` -> Server: one running server. `server_pair` -> (Server, Server): two.
- `shared_server_pair` -> (Server, Server): two servers for a whole module (module scope, much faster); for
  tests that don't kill or reconfigure servers. Each test still takes `live_db`/`live_room` and its own room.
- `live_room(**fields)` -> Room: an open room with a unique slug (so concurrent runs on the shared Redis never
  share a Pub/Sub group).

A `Server` has `.url` ("http://127.0.0.1:PORT"), `.port`, `.pid`, `.origin`, `.log_path`, `.log_text()`,
`.stop()` (SIGTERM, then SIGKILL after a bounded wait), `.kill()` (SIGKILL: a crash), `.restart()` (same
port), `.alive`.

The servers share a secret key made for the test (so sessions and Pub/Sub payloads work across them, and a
stranger's process on the shared Redis can neither read their events nor be read). Sessions made
in-process with `tests.factories.session_cookie_for` are not valid on them: take cookies over HTTP with
`tests.system.helpers.guest_cookie` / `member_cookie`. Their send rate limit is raised (SAATHI_SEND_RATE)
so load tests measure ordering, not throttling; pass SAATHI_SEND_RATE to test throttling itself.
Server output (stdout and stderr) goes to `server-<port>.log` in the test's tmp_path, for log checks.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import IN_CI, skip_or_fail

BASE_DIR = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0  # seconds for a server to answer /healthz: Django start-up, then its send writer's (busy CI)
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
SYSTEM_DIR = Path(__file__).resolve().parent
_live: set[Server] = set()  # every server started in this pytest process, for the atexit safety net
_slugs = itertools.count(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/system as `system`, so `-m "not system"` leaves them all out."""
    for item in items:
        if SYSTEM_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.system)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's outcome on the item, so server fixtures can print their logs after a failure."""
    report = yield
    setattr(item, f"_system_{report.when}_failed", report.failed)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    node = request.node
    return any(getattr(node, f"_system_{when}_failed", False) for when in ("setup", "call"))


@pytest.fixture(autouse=True)
def _clean_limits_and_cache() -> Iterator[None]:
    """Override the root fixture: system tests must not clear the cache or rate limits.

    Here the cache and limits live in the servers, in the SHARED Redis: the root fixture's cache.clear() is a
    FLUSHDB, and ratelimit.reset() wipes every limit key, for every other engineer's tests too.
    """
    yield


# --- The database --------------------------------------------------------------------------------------


def database_url(db: dict[str, Any]) -> str:
    """Return a DATABASE_URL (django-environ style) for these Django database settings."""
    user = quote(db.get("USER") or "", safe="")
    password = quote(str(db.get("PASSWORD") or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{quote(db['NAME'], safe='')}"


POSTGRES_NEEDED = "system tests need PostgreSQL (run with DATABASE_URL=postgres://…)"


def require_postgres() -> None:
    """Skip unless the test database is PostgreSQL (SQLite's test database is in memory, invisible to servers).

    Under CI=true this is a failure, not a skip.
    """
    from django.conf import settings

    if not settings.DATABASES["default"]["ENGINE"].endswith(("postgresql", "postgis")):
        if IN_CI:
            pytest.fail(f"{POSTGRES_NEEDED}; CI=true requires them to run")
        pytest.skip(POSTGRES_NEEDED)


@pytest.fixture(autouse=True)
def _postgres_before_anything(request: pytest.FixtureRequest) -> None:
    """Skip a `live_db` test on SQLite before pytest-django builds (and migrates) a database it can't use."""
    if "live_db" in request.fixturenames:
        require_postgres()


@pytest.fixture
def live_db(transactional_db: None) -> dict[str, Any]:
    """Give a committed test database that other processes can use; return its settings dict.

    Built on pytest-django's `transactional_db`: data is really committed (servers see it) and every table is
    emptied after the test. `database_url(live_db)` is the URL for a subprocess. PostgreSQL only: skips on
    SQLite (fails under CI=true). (`transactional_db` is a parameter, not a getfixturevalue: pytest-django
    only creates the test databases that collected tests ask for by name.)
    """
    require_postgres()
    from django.db import connection

    return dict(connection.settings_dict)  # NAME is now the test database (test_<name>)


# --- Servers -------------------------------------------------------------------------------------------


def free_port() -> int:
    """Return a TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http_status(url: str, timeout: float = 1.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


@dataclass(eq=False)
class Server:
    """One `manage.py serve` (daphne) process on 127.0.0.1."""

    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _log: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return self.url

    def room_channel(self, slug: str) -> str:
        """The Redis Pub/Sub channel this server's hub subscribes to for a room (its own prefix)."""
        return f"{self.env.get('SAATHI_CHANNEL_PREFIX', 'saathi')}__group__room.{slug}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        """Everything the server wrote to stdout and stderr, across restarts."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def spawn(self) -> None:
        """Start the process without waiting (see `wait_ready`)."""
        assert not self.alive, "already running"
        self.starts += 1
        self._log = open(self.log_path, "ab")  # noqa: SIM115  (closed in stop/kill)
        self._log.write(f"--- start {self.starts} on port {self.port} ---\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, str(BASE_DIR / "manage.py"), "serve", "--port", str(self.port)],
            cwd=BASE_DIR,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: Ctrl-C in the terminal is ours to pass on
        )
        _live.add(self)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until /healthz answers 200; raise with the log's tail if the process dies or never answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"server on port {self.port} exited at start:\n{self.log_text()[-3000:]}")
            if _http_status(self.url + "/healthz") == 200:
                return
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server on port {self.port} not healthy after {timeout}s:\n{self.log_text()[-3000:]}")

    def start(self) -> Server:
        self.spawn()
        self.wait_ready()
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (daphne closes sockets with 1001), then SIGKILL if it is still there after `timeout`."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL the process group: a crash, with no goodbye to anyone."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(STOP_TIMEOUT)
        self._reap()

    def restart(self) -> Server:
        """Stop, then start again on the same port (clients reconnect to the same URL)."""
        self.stop()
        return self.start()

    def _reap(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.proc is None or self.proc.poll() is not None:
            _live.discard(self)


@atexit.register
def _kill_leftovers() -> None:  # a safety net for an interrupted run; fixtures normally stop everything
    for server in list(_live):
        server.kill()


def server_env(db: dict[str, Any], redis_url: str, secret: str, **extra: str) -> dict[str, str]:
    """Return the environment for a server process on this database and Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "SAATHI_TEST"))}
    env.pop("SAATHI_TESTING", None)  # the servers run as in production, only with debug pages
    env.update(
        {
            "DATABASE_URL": database_url(db),
            "REDIS_URL": redis_url,
            "DJANGO_DEBUG": "true",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_SECRET_KEY": secret,
            "SAATHI_CHANNEL_ENCRYPTION_KEY": secret,
            "SAATHI_SEND_RATE": "1000/second",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    env.update(extra)
    return env


class ServerSet:
    """Servers that share a secret, a database and Redis; `stop_all()` ends every one it started."""

    def __init__(self, db: dict[str, Any], redis_url: str, log_dir: Path) -> None:
        self.db, self.redis_url, self.log_dir = db, redis_url, log_dir
        self.secret = "system-test-" + secrets.token_urlsafe(32)
        # Their own keys and channels on the shared Redis: no other run's events, and no rate counts left by an
        # earlier run whose database numbered rooms and people the same.
        self.redis_prefix = f"saathi-test-{secrets.token_hex(4)}"
        self.started: list[Server] = []

    def start(self, count: int = 2, **extra: str) -> list[Server]:
        """Start `count` servers at once (start-up is mostly imports: parallel on two cores), then wait for each."""
        env = server_env(self.db, self.redis_url, self.secret, **{"SAATHI_CHANNEL_PREFIX": self.redis_prefix, **extra})
        batch = []
        for _ in range(count):
            port = free_port()
            server = Server(port=port, env=env, log_path=self.log_dir / f"server-{port}.log")
            self.started.append(server)
            server.spawn()
            batch.append(server)
        for server in batch:
            server.wait_ready()
        return batch

    def stop_all(self) -> None:
        for server in self.started:
            with contextlib.suppress(Exception):
                server.stop()

    def print_logs(self, tail: int = 4000) -> None:
        """Print each server's log tail (pytest shows it under "Captured stdout teardown")."""
        for server in self.started:
            print(f"===== server on port {server.port} (pid {server.pid}) =====\n{server.log_text()[-tail:]}")


@pytest.fixture
def start_servers(
    request: pytest.FixtureRequest, live_db: dict[str, Any], redis_url: str, tmp_path: Path
) -> Iterator[Callable[..., list[Server]]]:
    """Factory: `start_servers(count=2, **env) -> [Server, ...]`, started in parallel and healthy.

    All servers of one test share a secret, the test database and Redis; all are stopped at teardown,
    pass or fail. Use this (not `shared_server_pair`) to kill, restart or reconfigure servers.
    """
    servers = ServerSet(live_db, redis_url, tmp_path)
    try:
        yield servers.start
    finally:
        servers.stop_all()
        if _failed(request):
            servers.print_logs()


@pytest.fixture(scope="module")
def shared_server_pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    """Two servers kept for a whole test module (saves ~3 s of start-up per test on two cores).

    For tests that only connect, talk and leave. Each test still needs `live_db` (or `live_room`) for its
    rows, and must use its own room (`live_room` gives unique slugs): between tests the tables are emptied
    under the running servers, and ids are not reused, so nothing carries over. Don't kill or restart these:
    use `start_servers` for that. Logs: `server.log_text()` holds the whole module's output.
    """
    from django.db import connection

    from tests.conftest import require_service

    require_postgres()  # before the (session-wide) test database is built: on SQLite, skip at once
    request.getfixturevalue("django_db_setup")
    redis = os.environ.get("SAATHI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")  # as the `redis_url` fixture
    require_service("Redis", redis, 6379)
    servers = ServerSet(dict(connection.settings_dict), redis, tmp_path_factory.mktemp("servers"))
    try:
        first, second = servers.start(2)
        yield first, second
    finally:
        servers.stop_all()


@pytest.fixture(autouse=True)
def _shared_server_logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a failed test that used `shared_server_pair`, print that pair's logs."""
    yield
    if "shared_server_pair" in request.fixturenames and _failed(request):
        for server in request.getfixturevalue("shared_server_pair"):
            print(f"===== server on port {server.port} (pid {server.pid}) =====\n{server.log_text()[-4000:]}")


@pytest.fixture
def daphne_server(start_servers: Callable[..., list[Server]]) -> Server:
    """One running server on the test database and Redis."""
    return start_servers(1)[0]


@pytest.fixture
def server_pair(start_servers: Callable[..., list[Server]]) -> tuple[Server, Server]:
    """Two running servers: the smallest cluster, for cross-process tests."""
    first, second = start_servers(2)
    return first, second


@pytest.fixture
def live_room(live_db: dict[str, Any]) -> Callable[..., Any]:
    """Factory: `live_room(**fields) -> Room`, an open room with a unique slug, committed for the servers."""
    from tests.factories import make_room

    run = secrets.token_hex(3)

    def make(**fields: Any) -> Any:
        fields.setdefault("slug", f"sys-{run}-{next(_slugs)}")
        return make_room(**fields)

    return make


# --- Real browsers (Debian's Chromium through Playwright) ---------------------------------------------------

CHROMIUM = os.environ.get("SAATHI_CHROMIUM", "/usr/bin/chromium")  # Debian's package
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture
def chromium_path() -> str:
    """Skip (fail under CI=true) when Debian's Chromium isn't installed; ask for it first, before any server."""
    if not os.path.exists(CHROMIUM):
        skip_or_fail(f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
def chromium(chromium_path: str) -> Iterator[Any]:
    """A headless Chromium. Ask for it last: sync Playwright runs an event loop, so no ORM calls while it's up."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def demo_rooms(live_db: dict[str, Any]) -> None:
    """The demo rooms, committed for the server (seed_demo is idempotent)."""
    import io

    from django.core.management import call_command

    call_command("seed_demo", stdout=io.StringIO())
