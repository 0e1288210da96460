"""Start, watch and stop the processes a benchmark run needs, on 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
HOST = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, *, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode} before listening")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {HOST}:{port} within {timeout:.0f} s")


def tree_pids(pid: int) -> list[int]:
    """Return pid and all its live descendants."""
    out, todo = [], [pid]
    while todo and len(out) < 1000:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
    return out


def cpu_seconds(pid: int) -> float:
    """Return utime+stime of pid and its live descendants, in seconds."""
    total = 0
    for p in tree_pids(pid):
        with contextlib.suppress(OSError, IndexError):
            with open(f"/proc/{p}/stat") as f:
                # The command name may hold spaces; fields after the last ')' are fixed.
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def rss_kib(pid: int) -> int:
    """Return the resident set size of pid and its live descendants, in KiB."""
    total = 0
    for p in tree_pids(pid):
        with contextlib.suppress(OSError, IndexError), open(f"/proc/{p}/statm") as f:
            total += int(f.read().split()[1]) * PAGE_KIB
    return total


@dataclass
class Proc:
    """A child process started by the benchmark, with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the process group this process leads: SIGTERM, then SIGKILL."""
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout)

    def tail(self, n: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        return ""


def spawn(name: str, argv: list[str], *, env: dict[str, str], cwd: Path, logdir: Path) -> Proc:
    """Start argv in its own process group, output to logdir/name.log."""
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"{name}.log"
    fh = open(log, "ab")  # noqa: SIM115 - kept open for the child's lifetime
    popen = subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdout=fh,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    fh.close()
    return Proc(name, popen, log)


class PrivateRedis:
    """A redis-server of the benchmark's own, on a free port, with no persistence.

    The shared Redis on 6379 is used by other people's tests: the benchmark never touches it.
    """

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.port = free_port()
        self.proc: Proc | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        argv = [
            "redis-server",
            "--bind",
            HOST,
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
            "--maxclients",
            "20000",
        ]
        self.proc = spawn(f"redis-{self.port}", argv, env=dict(os.environ), cwd=self.logdir, logdir=self.logdir)
        wait_port(self.port, timeout=10, proc=self.proc.popen)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid) if self.proc and self.proc.alive() else 0.0


def _pg_bin(name: str) -> str | None:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(found[-1]) if found else shutil.which(name)


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port (trust auth, 127.0.0.1 only).

    The shared server on 5432 serves other people's test runs, which can take every connection
    slot at once; a benchmark database of its own keeps both sides honest.
    """

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.port = free_port()
        self.datadir = Path(tempfile.mkdtemp(prefix="saathi-bench-pg-"))
        self.proc: Proc | None = None

    @staticmethod
    def available() -> bool:
        return _pg_bin("initdb") is not None and _pg_bin("postgres") is not None

    @property
    def url(self) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/postgres"

    def _as_postgres(self, argv: list[str]) -> list[str]:
        # PostgreSQL refuses to run as root.
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.datadir, "postgres", "postgres")
        subprocess.run(
            self._as_postgres(
                [
                    _pg_bin("initdb") or "initdb",
                    "-D",
                    str(self.datadir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        argv = self._as_postgres([
            _pg_bin("postgres") or "postgres", "-D", str(self.datadir), "-p", str(self.port),
            "-c", f"listen_addresses={HOST}", "-c", f"unix_socket_directories={self.datadir}",
            "-c", "max_connections=300",
        ])  # fmt: skip
        self.proc = spawn(f"postgres-{self.port}", argv, env=dict(os.environ), cwd=self.datadir, logdir=self.logdir)
        wait_port(self.port, timeout=30, proc=self.proc.popen)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(timeout=15)
            self.proc = None
        shutil.rmtree(self.datadir, ignore_errors=True)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid) if self.proc and self.proc.alive() else 0.0
