"""Rate limits behind one function, on the `limits` library (moving windows, in Redis when configured)."""

from __future__ import annotations

import logging
from functools import cache

from django.conf import settings
from limits import RateLimitItem, parse_many, storage, strategies

logger = logging.getLogger("saathi.ratelimit")


@cache
def _limiter() -> strategies.MovingWindowRateLimiter:
    url = settings.REDIS_URL or "memory://"
    return strategies.MovingWindowRateLimiter(storage.storage_from_string(url))


@cache
def _items(spec: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(spec))


def hit(spec: str, *key: str) -> bool:
    """Count one event against every limit in `spec`; return False if any limit is exceeded."""
    try:
        limiter = _limiter()
        return all([limiter.hit(item, *key) for item in _items(spec)])
    except Exception as exc:  # the limiter's store is down: don't block people from talking
        logger.warning("rate limiter unavailable (%s); allowing", type(exc).__name__)
        return True


def reset() -> None:
    """Forget every count (tests)."""
    _limiter().storage.reset()
