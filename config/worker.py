"""The background worker: a dumb loop around locked, idempotent steps that each take `now`.

Each step is a plain function `step(*, now: datetime) -> int` (how many things it did), named in
settings.SAATHI_WORKER_STEPS. Steps lock what they work on (`select_for_update(skip_locked=True)` on
PostgreSQL), so two workers running at once never do the same thing twice.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from django.utils.module_loading import import_string

from chat.failures import log_failure

logger = logging.getLogger("saathi.worker")

Step = Callable[..., int]


def load_steps() -> list[tuple[str, Step]]:
    return [(path, import_string(path)) for path in settings.SAATHI_WORKER_STEPS]


def run_once(*, now: datetime | None = None, steps: list[tuple[str, Step]] | None = None) -> dict[str, int]:
    """Run every step once; a failing step is logged and the others still run."""
    now = now or timezone.now()
    done: dict[str, int] = {}
    for name, step in steps if steps is not None else load_steps():
        close_old_connections()
        try:
            done[name] = step(now=now)
        except Exception as exc:
            log_failure(logger, f"worker step {name}", exc)
            done[name] = -1
    return done


def run_forever(*, interval: float, stop: threading.Event | None = None) -> None:
    """Loop until SIGTERM/SIGINT; finishes the step in hand before exiting."""
    stop = stop or threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    steps = load_steps()
    logger.info("worker started with %d steps", len(steps))
    while not stop.is_set():
        done = run_once(steps=steps)
        busy = {name: count for name, count in done.items() if count}
        if busy:
            logger.info("worker did %s", busy)
        stop.wait(interval)
    logger.info("worker stopped")
