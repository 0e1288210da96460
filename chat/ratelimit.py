"""Rate limits behind one function, on the `limits` library (moving windows, in Redis when configured)."""

from __future__ import annotations

import logging
import time
from functools import cache
from typing import Any

from django.conf import settings
from limits import RateLimitItem, parse_many, storage, strategies
from redis.exceptions import NoScriptError

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


def hit_many(spec: str, keys: list[tuple[str, ...]]) -> list[bool]:
    """`hit` for several keys at once: one Redis round trip (a pipeline of the library's own script) for all.

    The send path checks a whole batch of messages together (chat/services.py); a round trip per message
    from the database thread was a tenth of its time under load.
    """
    try:
        limiter, items = _limiter(), _items(spec)
        storage = limiter.storage
        acquire = getattr(storage, "lua_acquire_moving_window", None)  # limits' RedisStorage; memory has none
        if acquire is None:
            return [all([limiter.hit(item, *key) for item in items]) for key in keys]
        now = time.time()
        calls = [
            # what MovingWindowRateLimiter.hit -> RedisStorage.acquire_entry runs, by the script's digest
            (storage.prefixed_key(item.key_for(*key)), now, item.amount, item.get_expiry(), 1)
            for key in keys
            for item in items
        ]
        try:
            acquired = _evalsha_all(storage.get_connection(), acquire.sha, calls)
        except NoScriptError:  # Redis restarted, or its scripts were flushed: load it once and go again
            storage.get_connection().script_load(acquire.script)
            acquired = _evalsha_all(storage.get_connection(), acquire.sha, calls)
    except Exception as exc:  # the limiter's store is down: don't block people from talking
        logger.warning("rate limiter unavailable (%s); allowing", type(exc).__name__)
        return [True] * len(keys)
    per_key = len(items)
    return [all(acquired[n * per_key : (n + 1) * per_key]) for n in range(len(keys))]


def _evalsha_all(client: Any, sha: str, calls: list[tuple[Any, ...]]) -> list[Any]:
    """One pipeline of EVALSHA calls (one key each). Not the library's own script call inside a pipeline: that
    asks Redis whether the script exists before every pipeline, a second round trip for every batch."""
    pipe = client.pipeline(transaction=False)
    for key, *args in calls:
        pipe.evalsha(sha, 1, key, *args)
    return pipe.execute()


def reset() -> None:
    """Forget every count (tests)."""
    _limiter().storage.reset()
