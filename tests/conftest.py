"""Shared test set-up: service checks, clean rate limits, and helpers to open real sockets."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"

# Every frame and JSON/HTML response the suite receives is checked for private data (docs/privacy.md).
pytest_plugins = ["tests.privacy.census"]


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def service_missing(name: str, url: str, port: int) -> str | None:
    """Return why a needed service is unusable, or None. Under CI=true a missing service is a failure."""
    if _reachable(url, port):
        return None
    return f"{name} is not reachable at {url}"


def skip_or_fail(reason: str) -> None:
    """Skip a test whose service or tool is missing; under CI=true everything must run, so fail instead."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: every service and tool is required)")
    pytest.skip(reason)


def require_service(name: str, url: str, port: int) -> None:
    reason = service_missing(name, url, port)
    if reason is not None:
        skip_or_fail(reason)


@pytest.fixture(autouse=True)
def _clean_limits_and_cache(settings):  # type: ignore[no-untyped-def]
    """Each test starts with fresh rate-limit windows and socket slots."""
    from django.core.cache import cache

    from chat import ratelimit

    ratelimit.reset()
    cache.clear()
    yield


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("SAATHI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    require_service("Redis", url, 6379)
    return url


@pytest.fixture
def postgres_url() -> str:
    url = os.environ.get("SAATHI_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
    require_service("PostgreSQL", url, 5432)
    return url
