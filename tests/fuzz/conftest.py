"""Fuzz-suite set-up: a frame counter for the whole run, the example budget, and no shared-cache flush.

The suite must push at least `MIN_FRAMES_PER_RUN` generated frames through the server code each run (issue #6).
Every test adds what it sent to `frame_count`; at the end of the session the total is checked, but only when
every counting test of tests/fuzz ran and passed (a `-k` selection or a failure elsewhere is not a shortfall).

`SAATHI_FUZZ_SCALE` (default 1) multiplies every example budget: `SAATHI_FUZZ_SCALE=10` is a ten-times bigger,
randomly seeded run. At scale 1 the runs are derandomized, so CI sees the same frames every time.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

MIN_FRAMES_PER_RUN = 10_000
SCALE = max(1, int(os.environ.get("SAATHI_FUZZ_SCALE", "1")))
COUNTING_MODULES = ("tests/fuzz/test_frames_inprocess.py",)


def fuzz_settings(examples: int, **extra: object) -> settings:
    """Hypothesis settings for a fuzz test: `examples` x SAATHI_FUZZ_SCALE, fixed seed at scale 1, no deadline."""
    return settings(
        max_examples=examples * SCALE,
        derandomize=SCALE == 1,
        deadline=None,
        database=None,  # no example database: a CI run is the same run every time
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
        **extra,  # type: ignore[arg-type]
    )


_counts: Counter[str] = Counter()


@pytest.fixture
def frame_count(request: pytest.FixtureRequest) -> Counter[str]:
    """Count frames sent by this test: `frame_count[test name] += n` (kept for the end-of-run check)."""
    return _counts


@pytest.fixture(scope="session", autouse=True)
def _at_least_ten_thousand_frames(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    session = request.session
    counting = [item for item in session.items if item.nodeid.startswith(COUNTING_MODULES)]
    if not counting or session.testsfailed or request.config.option.keyword or request.config.option.deselect:
        return
    total = sum(_counts.values())
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\nfuzz: {total} generated frames this run ({dict(_counts)})")
    assert total >= MIN_FRAMES_PER_RUN * SCALE, (
        f"only {total} fuzz frames were sent; issue #6 needs {MIN_FRAMES_PER_RUN}"
    )


@pytest.fixture(autouse=True)
def _clean_limits_and_cache() -> Iterator[None]:
    """Override the root fixture: never clear the cache here.

    With REDIS_URL set the cache is the SHARED Redis, and cache.clear() is a FLUSHDB for everybody. The fuzz
    tests raise the rate limits instead of resetting them, and use fresh guests and rooms for socket slots.
    """
    yield
