"""Rate limits behind one function, on the `limits` library (moving windows, in Redis when configured)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import cache
from typing import Any

from django.conf import settings
from limits import RateLimitItem, parse_many, storage, strategies
from redis import exceptions as redis_errors

logger = logging.getLogger("saathi.ratelimit")


@cache
def _limiter() -> strategies.MovingWindowRateLimiter:
    url = settings.REDIS_URL or "memory://"
    # Counters keyed by room and person ids: a deployment's own prefix keeps another's (or an older test
    # database's, whose ids repeat) from counting against them on a shared Redis.
    return strategies.MovingWindowRateLimiter(
        storage.storage_from_string(url, key_prefix=f"{settings.REDIS_PREFIX}:limits")
    )


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
    return start_hit_many(spec, keys)()


def start_hit_many(spec: str, keys: list[tuple[str, ...]]) -> Callable[[], list[bool]]:
    """`hit_many` in two halves: the batch is sent to Redis now, and the returned function reads the answer.

    The send path reads the room's rules from the database while Redis counts, instead of waiting for one and
    then the other (a round trip fewer on every batch's way to the room). Call the returned function exactly
    once, also when the work in between fails: it gives the Redis connection back.
    """
    try:
        limiter, items = _limiter(), _items(spec)
        storage = limiter.storage
        if not hasattr(storage, "lua_acquire_moving_window"):  # not limits' RedisStorage: the memory one
            counted = [all([limiter.hit(item, *key) for item in items]) for key in keys]
            return lambda: counted
        names, args = [], [time.time()]
        for key in keys:
            for item in items:  # what MovingWindowRateLimiter.hit -> RedisStorage.acquire_entry asks, per item
                names.append(storage.prefixed_key(item.key_for(*key)))
                args += [item.amount, item.get_expiry()]
        pending = _PendingScript(_acquire_each(storage.get_connection()), names, args)
    except Exception as exc:  # the limiter's store is down: don't block people from talking
        return _allowing(len(keys), exc)
    per_key = len(items)

    def answer() -> list[bool]:
        try:
            counted = pending.result()
        except Exception as exc:
            return _allowing(len(keys), exc)()
        return [all(counted[n * per_key : (n + 1) * per_key]) for n in range(len(keys))]

    return answer


def _allowing(count: int, exc: Exception) -> Callable[[], list[bool]]:
    logger.warning("rate limiter unavailable (%s); allowing", type(exc).__name__)
    return lambda: [True] * count


_DROPPED = (redis_errors.ConnectionError, redis_errors.TimeoutError)


class _PendingScript:
    """A script call written to one of the client's pooled connections, its reply not read yet.

    redis-py's `Script.__call__` sends and reads in one go; this is the same EVALSHA (and the script loaded
    again if Redis has forgotten it, as after a restart) with the read left for later."""

    def __init__(self, script: Any, keys: list[str], args: list[Any]) -> None:
        self._script, self._command = script, ("EVALSHA", script.sha, len(keys), *keys, *args)
        self._pool = script.registered_client.connection_pool
        self._connection = self._pool.get_connection()
        self._sent = False
        try:
            self._connection.send_command(*self._command)
            self._sent = True
        except _DROPPED:  # a connection Redis closed (as in a restart): tried again in `result`
            self._connection.disconnect()
        except Exception:
            self._release(broken=True)
            raise

    def result(self) -> Any:
        try:
            try:
                if not self._sent:
                    self._connection.send_command(*self._command)
                reply = self._connection.read_response()
            except _DROPPED:
                if not self._sent:
                    raise
                # As redis-py's own retry: a pooled connection that died since its last use, once more afresh.
                self._connection.disconnect()
                self._connection.send_command(*self._command)
                reply = self._connection.read_response()
            except redis_errors.NoScriptError:  # Redis restarted and forgot it: load it, and run it again
                self._connection.send_command("SCRIPT", "LOAD", self._script.script)
                self._connection.read_response()
                self._connection.send_command(*self._command)
                reply = self._connection.read_response()
        except Exception:
            self._release(broken=True)
            raise
        self._release(broken=False)
        return reply

    def _release(self, *, broken: bool) -> None:
        if broken:  # a reply may still be on its way: nobody else may read it as theirs
            self._connection.disconnect()
        self._pool.release(self._connection)


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
