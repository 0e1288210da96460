"""Rate limits behind one function, on the `limits` library (moving windows, in Redis when configured)."""

from __future__ import annotations

import logging
import time
from functools import cache
from typing import Any

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


def hit_many(spec: str, keys: list[tuple[str, ...]]) -> list[bool]:
    """`hit` for several keys at once: one Redis call (`_ACQUIRE_EACH`) counts the whole batch.

    The send path checks a whole batch of messages together (chat/services.py); a round trip per message
    from the database thread was a tenth of its time under load, and a pipeline of the library's script, one
    call per key and limit, still cost Redis a script run each (5 ms for a batch of 100 sends).
    """
    try:
        limiter, items = _limiter(), _items(spec)
        storage = limiter.storage
        if not hasattr(storage, "lua_acquire_moving_window"):  # not limits' RedisStorage: the memory one
            return [all([limiter.hit(item, *key) for item in items]) for key in keys]
        names, args = [], [time.time()]
        for key in keys:
            for item in items:  # what MovingWindowRateLimiter.hit -> RedisStorage.acquire_entry asks, per item
                names.append(storage.prefixed_key(item.key_for(*key)))
                args += [item.amount, item.get_expiry()]
        counted = _acquire_each(storage.get_connection())(keys=names, args=args)
    except Exception as exc:  # the limiter's store is down: don't block people from talking
        logger.warning("rate limiter unavailable (%s); allowing", type(exc).__name__)
        return [True] * len(keys)
    per_key = len(items)
    return [all(counted[n * per_key : (n + 1) * per_key]) for n in range(len(keys))]


# The library's acquire_moving_window.lua (for one entry), run for every key of a batch in one call, so both
# count in the same lists: KEYS[i]'s limit and window are ARGV[2i] and ARGV[2i+1], ARGV[1] is the time. A key
# may come more than once (two sends from one person): each is counted in turn. 1 if counted, 0 if over.
_ACQUIRE_EACH = """
local now = tonumber(ARGV[1])
local counted = {}
for i, key in ipairs(KEYS) do
    local limit = tonumber(ARGV[2 * i])
    local expiry = tonumber(ARGV[2 * i + 1])
    local entry = redis.call('lindex', key, limit - 1)
    if entry and tonumber(entry) >= now - expiry then
        counted[i] = 0
    else
        redis.call('lpush', key, now)
        redis.call('ltrim', key, 0, limit - 1)
        redis.call('expire', key, expiry)
        counted[i] = 1
    end
end
return counted
"""


@cache
def _acquire_each(client: Any) -> Any:
    """The script, registered with the limiter's client (redis-py loads it again after a Redis restart)."""
    return client.register_script(_ACQUIRE_EACH)


def reset() -> None:
    """Forget every count (tests)."""
    _limiter().storage.reset()
