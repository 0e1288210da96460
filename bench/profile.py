"""Profile a target under a steady fan-out load with py-spy, and print where its CPU goes.

    .venv/bin/python -m bench.profile                                   # Saathi, room of 200, 4,000/s, 20 s
    .venv/bin/python -m bench.profile --rooms 40 --size 25 --dps 2000   # many small rooms
    .venv/bin/python -m bench.profile --connects 400                    # profile handshakes instead
    .venv/bin/python -m bench.profile --writer --rooms 40 --size 25     # Saathi's send writer process

The server is started fresh exactly as `bench.fanout` starts it; py-spy (`pip install py-spy`, not a
project dependency) samples it while the load runs. Prints the functions with the most samples, by
own time and by time including callees, and writes the raw stacks (`--out`, speedscope-free text:
one collapsed stack per line) for a closer look.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench.fanout import Bench, Plan
from bench.loadgen import raise_fd_limit
from bench.procs import tree_pids
from bench.targets import TARGETS, Context


def summarise(collapsed: Path, top: int) -> str:
    """Own and inclusive sample counts per function from py-spy's collapsed (`raw`) output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].rstrip(")") for f in stack.split(";")]
        if frames and frames[0].startswith("process "):
            frames = frames[1:]  # py-spy's --subprocesses prefix
        if not frames or frames[-1].startswith(("select ", "epoll", "poll ", "wait ")):
            continue  # idle: the reactor waiting
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"busy samples: {total}", "", "own time:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines += ["", "including callees:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--target", default="saathi", choices=sorted(TARGETS))
    parser.add_argument("--rooms", type=int, default=1)
    parser.add_argument("--size", type=int, default=200, help="members per room")
    parser.add_argument("--senders", type=int, default=10, help="senders per room")
    parser.add_argument("--dps", type=float, default=4000.0, help="offered deliveries per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connects", type=int, default=0, help="profile this many handshakes instead")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--writer", action="store_true", help="sample Saathi's send writer, not the server")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", type=Path, help="collapsed stacks (default: a temporary file)")
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        parser.error("py-spy not found: pip install py-spy")
    raise_fd_limit()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    logdir = Path(tempfile.gettempdir()) / "saathi-bench" / f"profile-{stamp}"
    out = args.out or logdir / "stacks.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    target = TARGETS[args.target](Context(logdir=logdir))
    target.start()
    bench = Bench(target, Plan(), True, lambda msg: print(msg, flush=True))
    try:
        slugs = [f"prof-{i}" for i in range(args.rooms)]
        target.prepare_rooms(slugs)
        assert target.server is not None
        pid = _writer_pid(target.server.pid) if args.writer else target.server.pid
        # The server's loop shares its interpreter lock with daphne's threads: count only samples holding it.
        # The writer is one thread: all its samples count.
        record = [spy, "record", "--pid", str(pid), "--rate", str(args.rate), "--format", "raw"]
        record += [] if args.writer else ["--gil"]
        if args.connects:
            bench.ensure_auth(args.connects)
            with _sampling([*record, "--output", str(out)]):
                lay = bench.connect([f"prof-{i % args.rooms}" for i in range(args.connects)], 1)
            print(f"{lay.size} handshakes in {lay.connect_s:.1f} s")
        else:
            lay = bench.connect(slugs, args.size)
            bench.step(lay, args.dps, 3.0, args.senders)  # warm-up
            with _sampling([*record, "--output", str(out)]):
                result = bench.step(lay, args.dps, args.seconds, args.senders)
            print(
                f"{args.dps:.0f}/s offered: {result.get('why') or 'sustained'}; "
                f"server CPU {result.get('server_cpu_us_per_delivery')} us/delivery, "
                f"room p99 {result.get('room_p99_ms')} ms"
            )
        print(summarise(out, args.top))
        print(f"\nstacks: {out}   logs: {logdir}")
    finally:
        bench.close()
        target.stop()
    return 0


def _writer_pid(server_pid: int, wait_s: float = 60.0) -> int:
    """The server's send writer process (`python -m chat.writer`), once it has started."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        for pid in tree_pids(server_pid)[1:]:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    if b"chat.writer" in cmdline.read():
                        return pid
            except OSError:
                continue
        time.sleep(0.2)
    raise SystemExit("no send writer process under the server (is the target Saathi?)")


class _sampling:
    """py-spy attached for the duration of a `with` block."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.send_signal(2)  # SIGINT: py-spy writes what it has and exits
        threading.Thread(target=self.proc.wait, daemon=True).start()
        self.proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
