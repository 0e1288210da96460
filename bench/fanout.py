"""Fan-out benchmark: start each target fresh, load it the same way, print one table.

    .venv/bin/python -m bench.fanout                       # every target, ~15 min on 2 cores
    .venv/bin/python -m bench.fanout --quick               # a tiny run, under a minute
    .venv/bin/python -m bench.fanout --targets relay,tutorial-redis --out bench/results/x.json

Every server is a subprocess on 127.0.0.1 on a free port; targets that need Redis get a
private redis-server of their own (never the shared one on 6379). docs/performance.md says
what each row means.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import procs
from bench.loadgen import raise_fd_limit, worker_main
from bench.targets import BASELINES, TARGETS, Context, Target

P99_LIMIT_MS = 250.0
ONTIME_FRACTION = 0.95
SCENARIOS = ("idle", "room50", "room200", "rooms25", "fixed", "overload", "redis")


# ---------------------------------------------------------------------------------------------
# Options


@dataclass
class Plan:
    """Sizes and durations of one run; `quick()` is the smoke-test version."""

    workers: int = 2
    connect_concurrency: int = 50  # handshakes in flight per worker
    idle_clients: int = 1000
    idle_settle_s: float = 2.0
    step_s: float = 3.0
    grace_s: float = 3.0  # after the last send, how long a delivery may take before it is lost
    drain_max_s: float = 20.0
    start_dps: float = 1000.0  # first level of each climb, deliveries per second
    max_dps: float = 400_000.0
    # Four halvings leave a last step of 1/16 of the octave (2,000/s near 40,000/s): with three, one step was
    # 10-12 % of capacity, as wide as the 0.9x on/off margin it has to place.
    bisections: int = 4
    retry_failed: bool = True
    max_steps: int = 14
    fanouts: list[tuple[str, int, int, int]] = field(
        default_factory=lambda: [
            # key, rooms, members per room, senders per room
            ("room50", 1, 50, 5),
            ("room200", 1, 200, 10),
            ("rooms25", 40, 25, 2),
        ]
    )
    fixed_dps: float = 2500.0
    fixed_s: float = 10.0
    overload_s: float = 10.0
    redis_rate_dps: float = 1000.0
    redis_run_s: float = 12.0
    redis_down_at_s: float = 3.0
    redis_outage_s: float = 2.0
    body_pad: int = 60  # bodies are ~100 characters, like a short chat message
    scenarios: list[str] = field(default_factory=lambda: list(SCENARIOS))

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            workers=2,
            idle_clients=100,
            idle_settle_s=0.5,
            step_s=1.0,
            grace_s=1.0,
            drain_max_s=3.0,
            start_dps=500.0,
            max_dps=1000.0,
            bisections=0,
            max_steps=3,
            retry_failed=False,
            fanouts=[("room50", 1, 50, 5), ("room200", 1, 200, 10), ("rooms25", 8, 25, 2)],
            fixed_s=1.5,
            overload_s=1.0,
            redis_rate_dps=500.0,
            redis_run_s=4.0,
            redis_down_at_s=1.0,
            redis_outage_s=1.0,
        )


# ---------------------------------------------------------------------------------------------
# The generator fleet


class Fleet:
    """The generator processes, driven over pipes."""

    def __init__(self, n: int, codec: str, use_uvloop: bool) -> None:
        ctx = mp.get_context("spawn")
        self.conns = []
        self.procs = []
        for i in range(n):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=worker_main, args=(child, i, codec, use_uvloop), daemon=True)
            p.start()
            self.conns.append(parent)
            self.procs.append(p)

    def call(self, cmds: list[tuple[str, dict[str, Any]]], timeout: float = 120.0) -> list[Any]:
        """Send one command to each worker, then wait for every answer."""
        for conn, cmd in zip(self.conns, cmds, strict=True):
            conn.send(cmd)
        out = []
        for i, conn in enumerate(self.conns):
            if not conn.poll(timeout):
                raise TimeoutError(f"generator {i} did not answer {cmds[i][0]} within {timeout:.0f} s")
            status, result = conn.recv()
            if status != "ok":
                raise RuntimeError(f"generator {i}: {result}")
            out.append(result)
        return out

    def all(self, cmd: str, timeout: float = 120.0, **args: Any) -> list[Any]:
        return self.call([(cmd, args)] * len(self.conns), timeout)

    def cpu(self) -> list[float]:
        return [procs.cpu_seconds(p.pid) for p in self.procs]

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(("exit", {}))
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
                p.join(5)


@dataclass
class Layout:
    """Which generator holds which member of which room."""

    rooms: list[str]  # room index -> slug
    members: list[list[tuple[int, int]]]  # room index -> open (worker, client index)
    wanted: int
    connect_s: float = 0.0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    gen_cpu_s: float = 0.0

    @property
    def size(self) -> int:
        return sum(len(m) for m in self.members)

    def room_sizes(self) -> list[int]:
        return [len(m) for m in self.members]


class Bench:
    """Everything one target goes through."""

    def __init__(self, target: Target, plan: Plan, use_uvloop: bool, log: Any) -> None:
        self.t = target
        self.plan = plan
        self.log = log
        self.fleet = Fleet(plan.workers, target.codec, use_uvloop)
        self.step_id = 0
        self.headers: list[dict[str, str]] = []
        self.paired = ""  # the other target's name while this one's climbs take turns with it

    # -- clients ----------------------------------------------------------------------------
    def ensure_auth(self, n: int) -> None:
        if len(self.headers) < n:  # only the missing ones: a handle can't be taken twice
            self.headers += self.t.auth_headers(n - len(self.headers), start=len(self.headers))

    def connect(self, slugs: list[str], per_room: int) -> Layout:
        w = self.plan.workers
        specs: list[list[dict[str, Any]]] = [[] for _ in range(w)]
        where: list[tuple[int, int, int]] = []  # (room, worker, position in that worker's specs)
        g = 0
        self.ensure_auth(len(slugs) * per_room)
        for r, slug in enumerate(slugs):
            for _m in range(per_room):
                wi = g % w
                where.append((r, wi, len(specs[wi])))
                specs[wi].append({"room": r, "path": self.t.room_path(slug, g), "headers": self.headers[g]})
                g += 1
        res = self.fleet.call(
            [
                (
                    "connect",
                    {"specs": s, "port": self.t.port, "concurrency": self.plan.connect_concurrency, "timeout": 20.0},
                )
                for s in specs
            ],
            timeout=600,
        )
        ok = [set(x["ok"]) for x in res]
        members: list[list[tuple[int, int]]] = [[] for _ in slugs]
        bases = [x["base"] for x in res]
        for r, wi, pos in where:
            if bases[wi] + pos in ok[wi]:
                members[r].append((wi, bases[wi] + pos))
        errors: dict[str, int] = {}
        for x in res:
            for k, v in x["errors"].items():
                errors[k] = errors.get(k, 0) + v
        lay = Layout(
            slugs,
            members,
            g,
            connect_s=max(x["elapsed"] for x in res),
            failed=sum(x["failed"] for x in res),
            errors=errors,
            gen_cpu_s=sum(x["cpu"] for x in res),
        )
        if lay.failed:
            self.log(f"    {lay.failed}/{g} connects failed: {errors}")
        if lay.failed > max(1, g // 100):
            raise RuntimeError(f"{lay.failed} of {g} connects failed: {errors}")
        return lay

    def close_all(self) -> None:
        self.fleet.all("close_all", timeout=60, wait_s=10.0)

    # -- one send step ------------------------------------------------------------------------
    def step(
        self,
        lay: Layout,
        dps: float,
        duration: float,
        senders_per_room: int,
        *,
        grace: float | None = None,
        quiet_end: bool = False,
        during: Any = None,
        keep_raw: bool = False,
    ) -> dict[str, Any]:
        """Offer `dps` deliveries per second for `duration`; return what happened."""
        plan = self.plan
        self.step_id += 1
        sid = self.step_id
        sizes = lay.room_sizes()
        mean_size = sum(sizes) / len(sizes)
        sends_per_s = dps / mean_size
        per_worker: list[list[int]] = [[] for _ in range(plan.workers)]
        for members in lay.members:
            for wi, ci in members[:senders_per_room]:
                per_worker[wi].append(ci)
        n_senders = sum(len(s) for s in per_worker)
        # At low rates a short step may hold no message at all: stretch it to a few per generator.
        slowest = min(sends_per_s * len(s) / n_senders for s in per_worker if s)
        duration = min(max(duration, 4 / slowest), max(duration, 10.0))
        t0 = time.monotonic_ns() + 300_000_000
        cmds = [
            (
                "send_step",
                {
                    "step": sid,
                    "rate": sends_per_s * len(s) / n_senders,
                    "duration": duration,
                    "senders": s,
                    "t0_ns": t0,
                    "pad": plan.body_pad,
                    "ontime_slack_s": P99_LIMIT_MS / 1000,
                },
            )
            for s in per_worker
        ]
        cpu0, rcpu0, gcpu0, sys0 = self.t.server_cpu(), self.t.redis_cpu(), self.fleet.cpu(), _proc_stat()
        dcpu0 = self.t.db_cpu()
        for conn, cmd in zip(self.fleet.conns, cmds, strict=True):
            conn.send(cmd)
        side = None
        if during is not None:
            side = threading.Thread(target=during, args=(t0,), daemon=True)
            side.start()
        sent_res = []
        for i, conn in enumerate(self.fleet.conns):
            if not conn.poll(duration + 60):
                raise TimeoutError(f"generator {i} did not finish its sends")
            status, result = conn.recv()
            if status != "ok":
                raise RuntimeError(f"generator {i}: {result}")
            sent_res.append(result)
        t_sent = time.monotonic()
        send_wall = (time.monotonic_ns() - t0) / 1e9
        gcpu_send = self.fleet.cpu()
        sent = sum(r["sent"] for r in sent_res)
        expected_total = sent * mean_size  # refined per room below
        # Grace: wait until everything arrived, or the grace period is over.
        grace = plan.grace_s if grace is None else grace
        last_total, last_change = -1, time.monotonic()
        while time.monotonic() - t_sent < grace:
            st = self.fleet.all("status", step=sid)
            got = sum(s["step_deliveries"] for s in st)
            if got >= expected_total and not quiet_end:
                break
            if got != last_total:
                last_total, last_change = got, time.monotonic()
            elif quiet_end and time.monotonic() - last_change > 1.0:
                break
            time.sleep(0.1)
        cpu1, rcpu1, gcpu1, sys1 = self.t.server_cpu(), self.t.redis_cpu(), self.fleet.cpu(), _proc_stat()
        dcpu1 = self.t.db_cpu()
        if side is not None:
            side.join(60)
        col = self.fleet.all("collect", step=sid)
        return self._evaluate(
            sid,
            dps,
            duration,
            lay,
            col,
            sent_res,
            keep_raw,
            {
                "server_cpu_s": cpu1 - cpu0,
                "redis_cpu_s": rcpu1 - rcpu0,
                "db_cpu_s": dcpu1 - dcpu0,
                "gen_cpu_send_max": max((b - a) / send_wall for a, b in zip(gcpu0, gcpu_send, strict=True)),
                "gen_cpu_s": sum(gcpu1) - sum(gcpu0),
                "machine_busy": _busy(sys0, sys1),
                "machine_steal": _steal(sys0, sys1),
                "wall_s": time.monotonic() - t_sent + send_wall,
            },
        )

    def _evaluate(
        self,
        sid: int,
        dps: float,
        duration: float,
        lay: Layout,
        col: list[dict[str, Any]],
        sent_res: list[dict[str, Any]],
        keep_raw: bool,
        cpu: dict[str, float],
    ) -> dict[str, Any]:
        sizes = lay.room_sizes()
        msgs: dict[int, list[int]] = {}
        lat = array("i")
        sent = array("q")
        for c in col:
            # Every generator holds some members of every room: add their counts up.
            for msgno, (n, first, last) in c["msgs"].items():
                e = msgs.get(msgno)
                if e is None:
                    msgs[msgno] = [n, first, last]
                else:
                    e[0] += n
                    e[1] = min(e[1], first)
                    e[2] = max(e[2], last)
            a = array("i")
            a.frombytes(c["lat_us"])
            lat.extend(a)
            s = array("q")
            s.frombytes(c["sent"])
            sent.extend(s)
        # A send the server refused with an error frame naming it (busy, rate limited) never became a message:
        # the sender was told, and nobody is owed a copy. It is counted apart, and fails a capacity step.
        refused: set[int] = set()
        for c in col:
            r_arr = array("q")
            r_arr.frombytes(c.get("refused", b""))
            refused.update(r_arr)
        expected = lost = 0
        whole: list[int] = []
        by_room_sent = [0] * len(sizes)
        for i in range(0, len(sent), 3):
            msgno, room, tsched = sent[i], sent[i + 1], sent[i + 2]
            if msgno in refused:
                continue
            by_room_sent[room] += 1
            exp = sizes[room]
            expected += exp
            e = msgs.get(msgno)
            got = e[0] if e else 0
            if got >= exp:
                whole.append((e[2] - tsched) // 1000)
            else:
                lost += exp - got
        delivered = len(lat)
        ontime = sum(c["ontime"] for c in col)
        # Per member: who missed messages, and did they get any sign of it?
        silent = signalled = closed = 0
        for c in col:
            for room, got, jumps, resyncs, was_closed in c["per_client"]:
                if room >= len(sizes):
                    continue
                missing = max(0, by_room_sent[room] - got)
                if was_closed:
                    closed += 1
                    signalled += missing
                elif missing and (resyncs or (jumps and self.t.id_gap_signals)):
                    signalled += missing
                else:
                    silent += missing
        other: dict[str, int] = {}
        for c in col:
            for k, v in c["other"].items():
                other[k] = other.get(k, 0) + v
        lat_s = sorted(lat)
        whole.sort()
        r = {
            "step": sid,
            "offered_dps": round(dps, 1),
            "duration_s": duration,
            "sent": len(sent) // 3,
            "unsent": sum(x["unsent"] for x in sent_res),
            "refused": len(refused),
            "expected": expected,
            "delivered": delivered,
            "lost": lost,
            "ontime_frac": round(ontime / expected, 4) if expected else 0.0,
            "delivered_frac": round(delivered / expected, 4) if expected else 0.0,
            "p50_ms": _pct(lat_s, 0.50),
            "p99_ms": _pct(lat_s, 0.99),
            "room_p50_ms": _pct(whole, 0.50),
            "room_p99_ms": _pct(whole, 0.99),
            "complete_msgs": len(whole),
            "server_cpu_us_per_delivery": _per(cpu["server_cpu_s"], delivered),
            "redis_cpu_us_per_delivery": _per(cpu["redis_cpu_s"], delivered),
            "db_cpu_us_per_delivery": _per(cpu["db_cpu_s"], delivered),
            "gen_cpu_us_per_delivery": _per(cpu["gen_cpu_s"], delivered),
            "gen_busiest_core_frac": round(cpu["gen_cpu_send_max"], 3),
            "machine_busy_frac": round(cpu["machine_busy"], 3),
            "machine_steal_frac": round(cpu["machine_steal"], 3),
            # Cores busy with something else (other people's work on a shared machine): noise.
            "other_cores": round(
                max(
                    0.0,
                    cpu["machine_busy"] * (os.cpu_count() or 1)
                    - (cpu["server_cpu_s"] + cpu["redis_cpu_s"] + cpu["db_cpu_s"] + cpu["gen_cpu_s"]) / cpu["wall_s"],
                ),
                2,
            ),
            "send_lag_p99_ms": max(x["lag_p99_ms"] for x in sent_res),
            "closed_by_server": closed,
            "lost_silent": silent,
            "lost_signalled": signalled,
            "frames": other,
            "server_alive": self.t.server_alive(),
        }
        reasons = []
        if lost:
            reasons.append(f"lost {lost}")
        if refused:
            reasons.append(f"refused {len(refused)} sends")
        if r["ontime_frac"] < ONTIME_FRACTION:
            reasons.append(f"behind ({r['ontime_frac']:.0%} on time)")
        if r["room_p99_ms"] is None or r["room_p99_ms"] > P99_LIMIT_MS:
            reasons.append(f"room p99 {r['room_p99_ms']} ms")
        if closed:
            reasons.append(f"{closed} closed")
        if not r["server_alive"]:
            reasons.append("server died")
        r["passed"] = not reasons
        r["why"] = ", ".join(reasons)
        # The generator, not the server, may be what failed: say so.
        r["generator_limited"] = bool(r["send_lag_p99_ms"] > 50 or r["gen_busiest_core_frac"] > 0.9)
        if keep_raw:
            r["_raw"] = (msgs, sent, sizes)
        return r

    def drain(self) -> bool:
        """Wait until deliveries stop arriving; return False if they never did."""
        deadline = time.monotonic() + self.plan.drain_max_s
        last = -1
        while time.monotonic() < deadline:
            total = sum(s["arrivals"] for s in self.fleet.all("status", step=None))
            if total == last:
                return True
            last = total
            time.sleep(0.5)
        return False

    # -- scenarios ----------------------------------------------------------------------------
    def idle_and_connect(self) -> dict[str, Any]:
        """Connect N idle members as fast as allowed; report handshakes/s and KiB per socket."""
        n = self.plan.idle_clients
        per_room = 100 if n >= 100 else n
        slugs = [f"idle-{i}" for i in range(max(1, n // per_room))]
        self.t.prepare_rooms(slugs)
        self.ensure_auth(max(n, 1000))
        warm = self.connect(slugs[:1], min(20, per_room))  # lazy imports and pools out of the delta
        self.close_all()
        del warm
        time.sleep(0.5)
        rss0 = self.t.server_rss_kib()
        cpu0 = self.t.server_cpu()
        lay = self.connect(slugs, per_room)
        cpu1 = self.t.server_cpu()
        time.sleep(self.plan.idle_settle_s)
        rss1 = self.t.server_rss_kib()
        redis_rss = procs.rss_kib(self.t.redis.proc.pid) if self.t.redis and self.t.redis.proc else None
        res = {
            "idle_clients": lay.size,
            "idle_failed": lay.failed,
            "rss_before_kib": rss0,
            "rss_after_kib": rss1,
            "kib_per_idle_conn": round((rss1 - rss0) / lay.size, 2) if lay.size else None,
            "connect_per_s": round(lay.size / lay.connect_s, 1) if lay.connect_s else None,
            "server_cpu_us_per_connect": round((cpu1 - cpu0) * 1e6 / lay.size, 1) if lay.size else None,
            "gen_cpu_us_per_connect": round(lay.gen_cpu_s * 1e6 / lay.size, 1) if lay.size else None,
            "redis_rss_kib": redis_rss,
            "connect_errors": lay.errors,
        }
        self.close_all()
        self.drain()
        return res

    def climb(self, key: str, rooms: int, size: int, senders: int) -> dict[str, Any]:
        """Double the offered load until it fails, then bisect; report the best level that held."""
        return _to_the_end(self.climb_steps(key, rooms, size, senders))

    def climb_steps(self, key: str, rooms: int, size: int, senders: int) -> Generator[None, None, dict[str, Any]]:
        """`climb`, pausing after every step (so two climbs can take turns: `paired_climbs`)."""
        plan = self.plan
        slugs = [f"{key}-{i}" for i in range(rooms)]
        self.t.prepare_rooms(slugs)
        lay = self.connect(slugs, size)
        steps: list[dict[str, Any]] = []
        best: dict[str, Any] | None = None
        worst: dict[str, Any] | None = None
        level = plan.start_dps
        bisect = 0
        for _ in range(plan.max_steps):
            for attempt in (1, 2):
                started_at = time.time()
                r = self.step(lay, level, plan.step_s, senders)
                r["attempt"], r["started_at"] = attempt, round(started_at, 3)
                steps.append(r)
                self.log(
                    f"    {self.t.name + ' ' if self.paired else ''}{key} {level:>9.0f}/s  {'pass' if r['passed'] else 'FAIL'}  "
                    f"room p99 {r['room_p99_ms']} ms  cpu {r['server_cpu_us_per_delivery']} us  "
                    f"gen {r['gen_busiest_core_frac']:.0%}  other {r['other_cores']}  steal {r['machine_steal_frac']:.0%}  {r['why']}"
                )
                if not r["passed"] and (not self.drain() or r["closed_by_server"] or r["lost"]):
                    self.close_all()
                    lay = self.connect(slugs, size)
                yield
                # A level fails only if it fails twice: one stall on a shared machine is not a limit.
                if r["passed"] or not plan.retry_failed:
                    break
            if r["passed"]:
                best = r if best is None or r["offered_dps"] > best["offered_dps"] else best
            else:
                worst = r if worst is None or r["offered_dps"] < worst["offered_dps"] else worst
            if worst is None:
                if level * 2 > plan.max_dps:
                    break
                level *= 2
                continue
            if best is None:
                level /= 2
                if level < 50:
                    break
                continue
            if bisect >= plan.bisections:
                break
            bisect += 1
            level = (best["offered_dps"] + worst["offered_dps"]) / 2
        self.close_all()
        self.drain()
        out: dict[str, Any] = {
            "rooms": rooms,
            "size": size,
            "senders_per_room": senders,
            "steps": steps,
            "sustained_dps": best["offered_dps"] if best else 0.0,
            "capped": worst is None,
            "first_fail_dps": worst["offered_dps"] if worst else None,
            "fail_generator_limited": worst["generator_limited"] if worst else None,
        }
        if best:
            for k in (
                "p50_ms",
                "p99_ms",
                "room_p50_ms",
                "room_p99_ms",
                "server_cpu_us_per_delivery",
                "redis_cpu_us_per_delivery",
                "db_cpu_us_per_delivery",
                "gen_cpu_us_per_delivery",
                "gen_busiest_core_frac",
                "machine_busy_frac",
                "machine_steal_frac",
            ):
                out[k] = best[k]
        return out

    def fixed(self, dps: float) -> dict[str, Any]:
        """Whole-room latency at a fixed load in the room of 200."""
        _key, rooms, size, senders = self._room200()
        slugs = [f"fixed-{i}" for i in range(rooms)]
        self.t.prepare_rooms(slugs)
        lay = self.connect(slugs, size)
        r = self.step(lay, dps, self.plan.fixed_s, senders)
        self.log(f"    fixed {dps:.0f}/s  room p99 {r['room_p99_ms']} ms  {r['why'] or 'ok'}")
        self.close_all()
        self.drain()
        return r

    def overload(self, dps: float) -> dict[str, Any]:
        """Offer twice what the room of 200 sustained; count what arrived and what vanished silently."""
        _key, rooms, size, senders = self._room200()
        slugs = [f"over-{i}" for i in range(rooms)]
        self.t.prepare_rooms(slugs)
        lay = self.connect(slugs, size)
        r = self.step(lay, dps, self.plan.overload_s, senders, grace=self.plan.drain_max_s, quiet_end=True)
        # What got through, against the capacity (half the offered load) over the same time.
        r["capacity_frac"] = round(r["delivered"] / (dps / 2 * r["duration_s"]), 3) if dps else None
        self.log(
            f"    overload {dps:.0f}/s  delivered {r['delivered_frac']:.1%} of accepted, {r['capacity_frac']}x capacity,"
            f"  refused {r['refused']}  silent loss {r['lost_silent']}  closed {r['closed_by_server']}"
        )
        self.close_all()
        self.drain()
        return r

    def redis_restart(self) -> dict[str, Any]:
        """Restart the private Redis for a moment under steady load; count closed sockets and recovery."""
        plan = self.plan
        redis = self.t.redis
        assert redis is not None
        slugs = ["redis-0"]
        self.t.prepare_rooms(slugs)
        lay = self.connect(slugs, 50)
        marks: dict[str, int] = {}

        def outage(t0: int) -> None:
            time.sleep(max(0.0, (t0 - time.monotonic_ns()) / 1e9 + plan.redis_down_at_s))
            marks["down"] = time.monotonic_ns()
            redis.stop()
            time.sleep(plan.redis_outage_s)
            try:
                redis.start()
            except Exception as exc:
                self.log(f"    Redis did not come back: {exc}")
                return
            marks["back"] = time.monotonic_ns()

        # Every member may speak, so sockets the server closes do not silence the room.
        r = self.step(lay, plan.redis_rate_dps, plan.redis_run_s, 50, during=outage, grace=plan.grace_s, keep_raw=True)
        msgs, sent, sizes = r.pop("_raw")
        open_end = sum(s["open"] for s in self.fleet.all("status", step=None))
        back = marks.get("back")
        down = marks.get("down")
        # Recovery: from Redis accepting again to the first delivery of a message sent after that.
        recovery = None
        after = after_ok = 0
        lost_outage = 0
        for i in range(0, len(sent), 3):
            msgno, tsched = sent[i], sent[i + 2]
            e = msgs.get(msgno)
            if down is not None and tsched >= down and (back is None or tsched < back):
                lost_outage += sizes[0] - (e[0] if e else 0)
            if back is None or tsched < back:
                continue
            after += 1
            if e:
                if e[0] >= open_end:
                    after_ok += 1
                first = (e[1] - back) / 1e9
                recovery = first if recovery is None else min(recovery, first)
        res = {
            "closed_by_server": r["closed_by_server"],
            "open_at_end": open_end,
            "members": lay.size,
            "recovery_s": round(recovery, 3) if recovery is not None else None,
            "sent_after_back": after,
            "reached_all_open_after_back_frac": round(after_ok / after, 4) if after else None,
            "deliveries_lost_during_outage": lost_outage,
            "outage_s": plan.redis_outage_s,
            "redis_back": back is not None,
            "delivered_frac": r["delivered_frac"],
            "frames": r["frames"],
            "server_alive": r["server_alive"],
        }
        self.log(
            f"    redis restart: closed {res['closed_by_server']}/{lay.size}, recovery "
            f"{res['recovery_s']} s, after-restart messages reaching every open member "
            f"{res['reached_all_open_after_back_frac']}"
        )
        self.close_all()
        self.drain()
        return res

    def _room200(self) -> tuple[str, int, int, int]:
        for f in self.plan.fanouts:
            if f[0] == "room200":
                return f
        return ("room200", 1, 200, 10)

    def close(self) -> None:
        self.fleet.close()


def _take_turns(climbs: list[Generator[None, None, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Run climbs a step at a time in turns, the order reversed every round, until each has returned."""
    results: list[dict[str, Any] | None] = [None] * len(climbs)
    order = list(range(len(climbs)))
    while None in results:
        for i in order:
            if results[i] is None:
                try:
                    next(climbs[i])
                except StopIteration as done:
                    results[i] = done.value
        order.reverse()
    return [r for r in results if r is not None]


def _to_the_end(steps: Generator[None, None, dict[str, Any]]) -> dict[str, Any]:
    return _take_turns([steps])[0]


def paired_climbs(
    first: Bench, second: Bench, key: str, rooms: int, size: int, senders: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Climb two targets (both running) in turns, one step each, the order swapped every round.

    Two climbs run one after the other meet different hosts on a shared machine (steal comes in bursts), so
    a ratio of their results measures the host as much as the servers; in turns, both meet the same one.
    """
    mine, theirs = _take_turns(
        [first.climb_steps(key, rooms, size, senders), second.climb_steps(key, rooms, size, senders)]
    )
    mine["paired_with"], theirs["paired_with"] = second.t.name, first.t.name
    return mine, theirs


def _per(seconds: float, n: int) -> float | None:
    return round(seconds * 1e6 / n, 2) if n else None


def _pct(sorted_us: Any, q: float) -> float | None:
    if not sorted_us:
        return None
    return round(sorted_us[min(len(sorted_us) - 1, int(len(sorted_us) * q))] / 1000, 2)


def _proc_stat() -> tuple[int, int, int]:
    """The machine's busy and total CPU time, and the time its virtual CPUs waited for the host (steal), in ticks."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + vals[4]
    steal = vals[7] if len(vals) > 7 else 0
    return sum(vals) - idle, sum(vals), steal


def _busy(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    total = b[1] - a[1]
    return (b[0] - a[0]) / total if total else 0.0


def _steal(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """The share of the machine's CPU time the host gave to someone else: on a shared virtual machine, the
    part of a slow step that no code here can explain."""
    total = b[1] - a[1]
    return (b[2] - a[2]) / total if total else 0.0


# ---------------------------------------------------------------------------------------------
# One target, start to finish


def all_slugs(plan: Plan) -> list[str]:
    """Every room a run uses, so a target can create them in one go before the clock starts."""
    n_idle = max(1, plan.idle_clients // 100) if plan.idle_clients >= 100 else 1
    slugs = [f"idle-{i}" for i in range(n_idle)]
    for key, rooms, _size, _senders in plan.fanouts:
        slugs += [f"{key}-{i}" for i in range(rooms)]
    rooms200 = next((f[1] for f in plan.fanouts if f[0] == "room200"), 1)
    slugs += [f"fixed-{i}" for i in range(rooms200)] + [f"over-{i}" for i in range(rooms200)]
    return [*slugs, "redis-0"]


def run_target(target: Target, plan: Plan, use_uvloop: bool, log: Any, partner: Target | None = None) -> dict[str, Any]:
    """Start the target fresh, run every scenario, stop it; return its results.

    With a `partner` (Saathi's store-less variant), the partner runs beside it and the climbs they share are
    made in turns (`paired_climbs`); the partner's results are returned under "partner".
    """
    t_start = time.monotonic()
    log(f"[{target.name}] starting: {target.description}")
    target.start()
    bench = Bench(target, plan, use_uvloop, log)
    res: dict[str, Any] = {"description": target.description, "errors": []}
    want = set(plan.scenarios) & (target.only_scenarios or set(plan.scenarios))
    other: Bench | None = None
    other_res: dict[str, Any] = {}
    partner_up = partner is not None
    try:
        target.prepare_rooms(all_slugs(plan))
        if partner is not None:
            log(f"[{partner.name}] starting beside it, climbs in turns: {partner.description}")
            other_res = {"description": partner.description, "errors": []}
            try:
                partner.start()
                other = Bench(partner, plan, use_uvloop, log)
                bench.paired, other.paired = partner.name, target.name
            except Exception as exc:  # the subject's own rows still count; the on/off row says n/a
                other_res["errors"].append(f"{type(exc).__name__}: {exc}")
                log(f"    ERROR {partner.name} did not start: {type(exc).__name__}: {exc}")
        if "idle" in want:
            res["idle"] = bench.idle_and_connect()
            log(
                f"    idle: {res['idle']['kib_per_idle_conn']} KiB per socket, "
                f"{res['idle']['connect_per_s']} handshakes/s"
            )
        for key, rooms, size, senders in plan.fanouts:
            if key not in want:
                continue
            if other is not None and partner is not None and key in (partner.only_scenarios or want):
                res[key], other_res[key] = paired_climbs(bench, other, key, rooms, size, senders)
                log(
                    f"    {key}: sustained {res[key]['sustained_dps']:.0f} deliveries/s, "
                    f"{partner.name} {other_res[key]['sustained_dps']:.0f}"
                )
                continue
            res[key] = bench.climb(key, rooms, size, senders)
            log(f"    {key}: sustained {res[key]['sustained_dps']:.0f} deliveries/s")
        if other is not None and partner is not None:  # the rest is the subject's alone, as before
            other.close()
            partner.stop()
            other, partner_up = None, False
        if "fixed" in want:
            res["fixed"] = bench.fixed(plan.fixed_dps)
        if "overload" in want:
            cap = res.get("room200", {}).get("sustained_dps") or plan.start_dps
            res["overload"] = bench.overload(2 * cap)
        if "redis" in want and target.redis is not None:
            res["redis_restart"] = bench.redis_restart()
    except Exception as exc:  # keep the other targets' results; say what broke
        res["errors"].append(f"{type(exc).__name__}: {exc}")
        log(f"    ERROR {type(exc).__name__}: {exc}\n{target.server.tail() if target.server else ''}")
    finally:
        bench.close()
        target.stop()
        if other is not None:
            other.close()
        if partner is not None and partner_up:  # the climbs broke off before it was stopped
            partner.stop()
    res["wall_s"] = round(time.monotonic() - t_start, 1)
    if partner is not None:
        res["partner"] = other_res
    return res


# ---------------------------------------------------------------------------------------------
# The table

ROWS: list[tuple[str, str, str]] = [
    # (path into the results, label, which way is better)
    ("idle.kib_per_idle_conn", "memory per idle connection (KiB)", "lower"),
    ("idle.connect_per_s", "connect rate (handshakes/s)", "higher"),
    ("idle.server_cpu_us_per_connect", "server CPU per connect (us)", "lower"),
]
for _k, _label in (("room50", "room of 50"), ("room200", "room of 200"), ("rooms25", "rooms of 25")):
    ROWS += [
        (f"{_k}.sustained_dps", f"{_label}: sustained deliveries/s", "higher"),
        (f"{_k}.server_cpu_us_per_delivery", f"{_label}: server CPU per delivery (us)", "lower"),
        (f"{_k}.redis_cpu_us_per_delivery", f"{_label}: Redis CPU per delivery (us)", "lower"),
        (f"{_k}.db_cpu_us_per_delivery", f"{_label}: database CPU per delivery (us)", "lower"),
        (f"{_k}.p50_ms", f"{_label}: delivery p50 at sustained (ms)", "lower"),
        (f"{_k}.p99_ms", f"{_label}: delivery p99 at sustained (ms)", "lower"),
        (f"{_k}.room_p50_ms", f"{_label}: whole-room p50 at sustained (ms)", "lower"),
        (f"{_k}.room_p99_ms", f"{_label}: whole-room p99 at sustained (ms)", "lower"),
    ]
ROWS += [
    ("fixed.room_p50_ms", "room of 200 @ fixed load: whole-room p50 (ms)", "lower"),
    ("fixed.room_p99_ms", "room of 200 @ fixed load: whole-room p99 (ms)", "lower"),
    ("fixed.p99_ms", "room of 200 @ fixed load: delivery p99 (ms)", "lower"),
    ("overload.offered_dps", "overload: offered deliveries/s (2x room-of-200 capacity)", "info"),
    ("overload.delivered_frac", "overload: fraction of accepted sends delivered", "higher"),
    ("overload.capacity_frac", "overload: delivered, as a fraction of capacity", "higher"),
    ("overload.refused", "overload: sends refused as busy (sender told, retryable)", "info"),
    ("overload.lost_silent", "overload: deliveries lost with no gap signal", "lower"),
    ("overload.closed_by_server", "overload: sockets closed by server", "lower"),
    ("redis_restart.closed_by_server", "Redis restart: sockets closed by server (of 50)", "lower"),
    ("redis_restart.recovery_s", "Redis restart: seconds until delivery is back", "lower"),
    ("redis_restart.reached_all_open_after_back_frac", "Redis restart: later messages reaching all open", "higher"),
]


def _get(res: dict[str, Any], path: str) -> Any:
    cur: Any = res
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float) and 0 < abs(v) < 1 and v != int(v):
        return f"{v:.3f}"
    if isinstance(v, (int, float)):
        return f"{v:,.1f}" if isinstance(v, float) and abs(v) < 100 and v != int(v) else f"{v:,.0f}"
    return str(v)


def build_table(
    results: dict[str, dict[str, Any]], subject: str | None, fixed_dps: float
) -> tuple[list[str], list[list[str]]]:
    names = list(results)
    bases = [b for b in BASELINES if b in results and b != subject] if subject in results else []
    header = ["metric", *names] + [f"{subject}/{b}" for b in bases]
    rows = []
    for path, label, _better in ROWS:
        label = label.replace("fixed load", f"{fixed_dps:,.0f}/s")
        vals = [_get(results[n], path) for n in names]
        row = [label] + [_fmt(v) for v in vals]
        for b in bases:
            s, bv = _get(results[subject], path), _get(results[b], path)  # type: ignore[index]
            row.append(
                f"{s / bv:.2f}x" if isinstance(s, (int, float)) and isinstance(bv, (int, float)) and bv else "n/a"
            )
        rows.append(row)
    rows += _store_cost_rows(results, subject, names, bases)
    return header, rows


def _store_cost_rows(
    results: dict[str, dict[str, Any]], subject: str | None, names: list[str], bases: list[str]
) -> list[list[str]]:
    """Capacity with persistence and the crisis scan on, as a fraction of the same server with both off."""
    off = f"{subject}-nostore"
    if subject not in results or off not in results:
        return []
    rows = []
    for key, label in (("room200", "room of 200"), ("rooms25", "rooms of 25")):
        on_dps, off_dps = _get(results[subject], f"{key}.sustained_dps"), _get(results[off], f"{key}.sustained_dps")
        ratio = f"{on_dps / off_dps:.2f}x" if isinstance(on_dps, (int, float)) and off_dps else "n/a"
        row = [f"{label}: capacity, persistence + scan on / off"]
        row += [ratio if name == subject else "" for name in names] + ["" for _ in bases]
        rows.append(row)
    return rows


def render(header: list[str], rows: list[list[str]], markdown: bool = False) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    out = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True)))]
    out.append("  ".join("-" * w for w in widths))
    for r in rows:
        out.append(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        )
    return "\n".join(out)


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    versions = {}
    for pkg in ("websockets", "channels", "channels-redis", "daphne", "Django", "Twisted", "redis", "uvloop"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[pkg] = metadata.version(pkg)
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "mem_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run for smoke tests (under a minute)")
    parser.add_argument(
        "--targets",
        default="relay,tutorial-redis,tutorial-pubsub,saathi,saathi-nostore",
        help="comma-separated: " + ", ".join(TARGETS),
    )
    parser.add_argument("--out", type=Path, help="JSON file (default bench/results/<UTC time>.json)")
    parser.add_argument("--workers", type=int, help="generator processes (default 2)")
    parser.add_argument("--no-uvloop", action="store_true", help="generators on the stock asyncio loop")
    parser.add_argument(
        "--subject", default="saathi", help="the target that the ratio columns compare with each baseline"
    )
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated subset of: " + ", ".join(SCENARIOS)
    )
    parser.add_argument(
        "--apart",
        action="store_true",
        help="climb the subject and its store-less variant one after the other, not in turns",
    )
    args = parser.parse_args(argv)

    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {unknown}; known: {', '.join(TARGETS)}")
    plan = Plan.quick() if args.quick else Plan()
    if args.workers:
        plan.workers = args.workers
    plan.scenarios = [x.strip() for x in args.scenarios.split(",") if x.strip()]
    if set(plan.scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenario(s); known: {', '.join(SCENARIOS)}")
    raise_fd_limit()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or Path(__file__).parent / "results" / f"{stamp}.json"
    logdir = Path(tempfile.gettempdir()) / "saathi-bench" / stamp  # server logs, kept out of the tree
    ctx = Context(logdir=logdir, options={"quick": args.quick})

    def log(msg: str) -> None:
        print(msg, flush=True)

    needs_redis = [n for n in names if TARGETS[n].uses_redis]
    if needs_redis and not procs.PrivateRedis.available():
        log(f"redis-server not found: skipping {needs_redis}")
        names = [n for n in names if n not in needs_redis]

    # The on/off pair climbs in turns (see paired_climbs) unless --apart.
    off = f"{args.subject}-nostore"
    pair = not args.apart and args.subject in names and off in names
    t0 = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        if pair and name == off:
            continue
        target = TARGETS[name](ctx)
        partner = TARGETS[off](ctx) if pair and name == args.subject else None
        results[name] = run_target(target, plan, not args.no_uvloop, log, partner)
        if partner is not None:
            results[off] = results[name].pop("partner")
    header, rows = build_table(results, args.subject, plan.fixed_dps)
    table = render(header, rows)
    print()
    print(table)
    doc = {
        "started": stamp,
        "wall_s": round(time.monotonic() - t0, 1),
        "quick": args.quick,
        "machine": machine(),
        "plan": asdict(plan),
        "generator": {"uvloop": not args.no_uvloop},
        "limits": {"room_p99_ms": P99_LIMIT_MS, "ontime_fraction": ONTIME_FRACTION},
        "results": results,
        "table": {"header": header, "rows": rows},
        "table_markdown": render(header, rows, markdown=True),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, default=str))
    if not args.quick and args.out is None:
        (out.parent / "latest.json").write_text(out.read_text())
    print(f"\nJSON: {out}   logs: {logdir}   wall {doc['wall_s']} s")
    return 1 if any(r["errors"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
