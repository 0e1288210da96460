"""The per-person send limit, counted in the real Redis a batch at a time."""

from __future__ import annotations

import uuid

import pytest
import redis

from chat import ratelimit


@pytest.fixture
def limits_in_redis(settings, redis_url: str):  # type: ignore[no-untyped-def]
    settings.REDIS_URL = redis_url
    ratelimit._limiter.cache_clear()
    yield redis.Redis.from_url(redis_url)
    ratelimit._limiter.cache_clear()


def test_a_batch_is_counted_per_person_and_the_limit_holds_across_batches(limits_in_redis) -> None:
    room, hasty, calm = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    first = ratelimit.hit_many("3/minute", [("send", room, hasty)] * 2 + [("send", room, calm)])
    second = ratelimit.hit_many("3/minute", [("send", room, hasty)] * 2 + [("send", room, calm)])
    assert first == [True, True, True]
    assert second == [True, False, True]  # hasty's fourth send in the minute is over the limit; calm's second isn't


def test_the_limit_still_counts_after_redis_forgets_its_scripts(limits_in_redis) -> None:
    room, person = uuid.uuid4().hex, uuid.uuid4().hex
    assert ratelimit.hit_many("2/minute", [("send", room, person)]) == [True]
    limits_in_redis.script_flush()  # as after a Redis restart
    assert ratelimit.hit_many("2/minute", [("send", room, person)] * 2) == [
        True,
        False,
    ]  # loaded again, not allowed by default
