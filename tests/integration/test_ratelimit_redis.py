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


def test_a_batch_and_a_single_hit_count_in_the_same_window(limits_in_redis) -> None:
    room, person = uuid.uuid4().hex, uuid.uuid4().hex
    assert ratelimit.hit_many("3/minute", [("send", room, person)] * 2) == [True, True]
    assert ratelimit.hit("3/minute", "send", room, person)  # the library's own script sees the batch's two
    assert not ratelimit.hit("3/minute", "send", room, person)
    assert ratelimit.hit_many("3/minute", [("send", room, person)]) == [False]  # and the batch sees its one


def test_each_limit_of_a_spec_applies_with_its_own_size_and_window(limits_in_redis) -> None:
    room, person = uuid.uuid4().hex, uuid.uuid4().hex
    # The minute's 3 refuses the fourth send, though the second's 5 would allow it.
    assert ratelimit.hit_many("5/second;3/minute", [("send", room, person)] * 4) == [True, True, True, False]
    lives_ms = sorted(limits_in_redis.pttl(key) for key in limits_in_redis.keys(f"LIMITS:*{person}*"))
    assert len(lives_ms) == 2
    assert lives_ms[0] <= 1000 < 50_000 < lives_ms[1] <= 60_000  # each list expires with its own window
