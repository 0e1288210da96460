"""The per-person send limit, counted in the real Redis a batch at a time."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.conf import settings as django_settings

from chat import ratelimit


@pytest.fixture
def limits_in_redis(settings, redis_url: str):  # type: ignore[no-untyped-def]
    settings.REDIS_URL = redis_url
    ratelimit._limiter.cache_clear()
    yield redis.Redis.from_url(redis_url)
    ratelimit._limiter.cache_clear()


def counter_keys(person: str) -> str:
    return f"{django_settings.REDIS_PREFIX}:limits:*{person}*"


def test_deployments_sharing_a_redis_do_not_count_against_each_other(limits_in_redis, settings) -> None:
    # Room and person ids repeat across deployments (and test databases): the prefix keeps their counts apart.
    room, person = "1", f"u:{uuid.uuid4().hex}"
    settings.REDIS_PREFIX = f"first-{uuid.uuid4().hex[:8]}"
    assert ratelimit.hit_many("1/minute", [("send", room, person)] * 2) == [True, False]
    ratelimit._limiter.cache_clear()
    settings.REDIS_PREFIX = f"second-{uuid.uuid4().hex[:8]}"
    assert ratelimit.hit_many("1/minute", [("send", room, person)]) == [True]
    assert limits_in_redis.keys(counter_keys(person))  # counted under this deployment's own prefix


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
    lives_ms = sorted(limits_in_redis.pttl(key) for key in limits_in_redis.keys(counter_keys(person)))
    assert len(lives_ms) == 2
    assert lives_ms[0] <= 1000 < 50_000 < lives_ms[1] <= 60_000  # each list expires with its own window


def test_a_batch_sent_before_other_work_is_counted_once_when_its_answer_is_read(limits_in_redis) -> None:
    # The send path sends the batch's count, reads the room's rules meanwhile, then reads the count.
    room, person = uuid.uuid4().hex, uuid.uuid4().hex
    answer = ratelimit.start_hit_many("3/minute", [("send", room, person)] * 2)
    assert ratelimit.hit_many("3/minute", [("send", room, person)]) == [True]  # other Redis work in between
    assert answer() == [True, True]
    assert ratelimit.hit_many("3/minute", [("send", room, person)]) == [False]  # 2 + 1 counted, no more


def test_a_pooled_connection_redis_dropped_is_replaced_and_the_batch_counted_once(limits_in_redis) -> None:
    room, person = uuid.uuid4().hex, uuid.uuid4().hex
    assert ratelimit.hit_many("3/minute", [("send", room, person)]) == [True]  # a connection now in the pool
    limits_in_redis.client_kill_filter(_type="normal", skipme=True)  # as a Redis restart does to every client
    assert ratelimit.hit_many("3/minute", [("send", room, person)] * 2) == [True, True]
    assert limits_in_redis.llen(next(iter(limits_in_redis.keys(counter_keys(person))))) == 3


def test_a_batch_started_then_forgotten_by_redis_is_loaded_again_and_counted(limits_in_redis) -> None:
    room, person = uuid.uuid4().hex, uuid.uuid4().hex
    assert ratelimit.hit_many("2/minute", [("send", room, person)]) == [True]
    limits_in_redis.script_flush()
    assert ratelimit.start_hit_many("2/minute", [("send", room, person)] * 2)() == [True, False]


def test_without_redis_a_started_batch_is_allowed_and_the_limiter_says_why(settings, caplog) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    ratelimit._limiter.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="saathi.ratelimit"):
            assert ratelimit.start_hit_many("1/minute", [("send", "r", "p")] * 2)() == [True, True]
    finally:
        ratelimit._limiter.cache_clear()
    assert "rate limiter unavailable" in caplog.text
