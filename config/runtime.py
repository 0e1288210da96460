"""Interpreter tuning for long-lived processes (the ASGI server and its send writer)."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Freeze what start-up created out of the garbage collector's view, and collect less often.

    Django and the project leave hundreds of thousands of objects that live as long as the process; a full
    collection walking them all stalls whatever the process was doing (tail latency in a busy room).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
