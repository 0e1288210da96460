"""Benchmark the store behind every send: `chat.services.post_messages`, by batch size, on PostgreSQL.

Run on demand: .venv/bin/python -m bench.bench_store [--messages N] [--batches 1,5,25]

Starts a private PostgreSQL and Redis (as `bench.fanout` does), migrates, then writes batches of sends
the way the socket layer hands them over (group commit) into 40 rooms, from 80 members, with ~100
character bodies. The frames go nowhere: publishing is switched off here, so this measures the store
alone (rule query, rate limit, scan, numbering, insert, commit, the two frames), not fan-out.

Per message, for each batch size:
- CPU in this process (the database thread's Python: ORM, driver, frames), time.thread_time;
- wall clock, the time a sender waits for its batch (round trips included);
- PostgreSQL's CPU (its processes, from /proc) and Redis's;
- statements sent to PostgreSQL per batch (the pool's connection check, BEGIN and COMMIT not counted).
The baseline, measured in the same run, is bench/nostore.py (the benchmark's "persistence and crisis
scan off" variant): the same sends numbered in memory and encoded, nothing checked or stored.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench import procs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_store", description=__doc__)
    parser.add_argument("--messages", type=int, default=2000, help="messages written per batch size")
    parser.add_argument("--batches", default="1,5,25", help="batch sizes, comma-separated")
    parser.add_argument("--profile", metavar="FILE", help="also write a cProfile of Saathi's store to FILE")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.batches.split(",")]
    logdir = Path(tempfile.mkdtemp(prefix="saathi-bench-store-"))
    if not procs.PrivatePostgres.available():
        print("PostgreSQL binaries not found: this benchmark measures the PostgreSQL store", file=sys.stderr)
        return 2
    pg, redis = procs.PrivatePostgres(logdir), procs.PrivateRedis(logdir)
    pg.start()
    redis.start()
    try:
        os.environ.update({
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": pg.url,
            "REDIS_URL": redis.url,
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-store-not-secret",
            "SAATHI_SEND_RATE": "1000000/second",
            "SAATHI_LOG_LEVEL": "WARNING",
        })  # fmt: skip
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        rows = run(sizes, args.messages, pg, redis, profile=args.profile)
    finally:
        pg.stop()
        redis.stop()
    print_table(rows)
    return 0


def run(
    sizes: list[int], messages: int, pg: procs.PrivatePostgres, redis: procs.PrivateRedis, *, profile: str | None = None
) -> list[dict]:
    import cProfile

    from django.conf import settings
    from django.db import connection

    from accounts.models import User
    from accounts.services import do_sign_up, participant_for
    from bench import nostore
    from chat import broadcast, services
    from rooms.models import Access, Room

    broadcast._publish = lambda group, event: None  # measure the store, not the fan-out
    rooms = [Room.objects.create(slug=f"store-{n}", name=f"Store {n}", access=Access.OPEN) for n in range(40)]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # quick sign-ups; no logins here
    people = [
        participant_for(
            user=do_sign_up(
                username=f"store{n}", password=uuid.uuid4().hex, handle=f"Store x{n}", kind=User.Kind.RECOVERY
            ),
            session=None,
        )
        for n in range(80)
    ]
    body = "Day 41 today. The evening is the hard part, so I come here and read what you all wrote. " + "x" * 12
    stores = [
        ("saathi (post_messages)", services.post_messages),
        ("no store (bench/nostore.py)", nostore.post_messages),
    ]
    rows = []
    for size in sizes:
        for name, store in stores:
            sends_made = 0
            batches = []
            while sends_made < messages:
                batch = []
                for _ in range(size):
                    who = sends_made % len(people)
                    batch.append(services.SendIntent(rooms[who % len(rooms)], people[who], body, uuid.uuid4()))
                    sends_made += 1
                batches.append(batch)
            for batch in batches[:6]:  # warm: connection, caches, prepared statements
                store(batch)
            statements = [0]

            def count(execute, sql, params, many, context, statements=statements):  # type: ignore[no-untyped-def]
                statements[0] += 1
                return execute(sql, params, many, context)

            pg_cpu0, redis_cpu0 = pg.cpu_seconds(), redis.cpu_seconds()
            profiler = cProfile.Profile() if profile and store is services.post_messages else None
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            with connection.execute_wrapper(count):
                for batch in batches[6:]:
                    store(batch)
                    connection.close()  # as the socket layer's database hop does after each batch (the pool keeps it)
            if profiler:
                profiler.disable()
                profiler.dump_stats(f"{profile}.{size}")
            cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
            written = sum(len(b) for b in batches[6:])
            rows.append({
                "size": size,
                "store": name,
                "cpu_us": cpu * 1e6 / written,
                "wall_us": wall * 1e6 / written,
                "pg_cpu_us": (pg.cpu_seconds() - pg_cpu0) * 1e6 / written,
                "redis_cpu_us": (redis.cpu_seconds() - redis_cpu0) * 1e6 / written,
                "statements": statements[0] / (len(batches) - 6),
            })  # fmt: skip
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'batch':>5}  {'store':<28} {'CPU us/msg':>10} {'wall us/msg':>11} {'PG CPU us':>9} "
          f"{'Redis us':>8} {'stmts/batch':>11}  {'CPU ratio to no store':>21}")  # fmt: skip
    baseline = {r["size"]: r["cpu_us"] for r in rows if r["store"].startswith("no store")}
    for r in rows:
        ratio = r["cpu_us"] / baseline[r["size"]] if baseline.get(r["size"]) else float("nan")
        print(f"{r['size']:>5}  {r['store']:<28} {r['cpu_us']:>10.1f} {r['wall_us']:>11.1f} {r['pg_cpu_us']:>9.1f} "
              f"{r['redis_cpu_us']:>8.1f} {r['statements']:>11.1f}  {ratio:>20.1f}x")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
