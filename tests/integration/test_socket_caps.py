"""Socket caps never lock people out: slots expire on their own, and a dead cache lets people in."""

from __future__ import annotations

from django.test import override_settings

from chat import sockets

DEAD_REDIS = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}


LOCAL_MEMORY = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "caps"}}


@override_settings(CACHES=LOCAL_MEMORY)  # a cache whose clock the test controls (Redis keeps its own)
def test_a_crashed_processs_slots_free_themselves_within_two_minutes(settings):
    import time_machine
    from django.core.cache import caches

    settings.SAATHI_MAX_SOCKETS_PER_MEMBER = 1
    caches._settings = None
    with time_machine.travel(0, tick=False) as clock:
        assert sockets.claim_slot("g:1", "conn-on-a-crashed-process")
        assert sockets.claim_slot("g:1", "conn-b") is None  # held, and nobody refreshes it
        clock.shift(sockets.SLOT_TTL_SECONDS + 1)
        assert sockets.claim_slot("g:1", "conn-b")
    caches._settings = None


def test_refreshing_keeps_live_slots_and_the_cap_still_holds(settings):
    settings.SAATHI_MAX_SOCKETS_PER_MEMBER = 2
    first = sockets.claim_slot("g:2", "conn-a")
    second = sockets.claim_slot("g:2", "conn-b")
    sockets.refresh_slots({first: "conn-a", second: "conn-b"})
    assert sockets.claim_slot("g:2", "conn-c") is None
    sockets.release_slot(first)
    assert sockets.claim_slot("g:2", "conn-c")


@override_settings(CACHES=DEAD_REDIS)
def test_when_the_cache_is_down_people_still_get_in_untracked():
    from django.core.cache import caches

    caches._settings = None  # rebuild caches from the overridden setting
    try:
        assert sockets.claim_slot("g:3", "conn-a") == sockets.UNTRACKED
        sockets.release_slot(sockets.UNTRACKED)  # nothing to release, and no error
        sockets.refresh_slots({"saathi:sock:x:0": "conn-a"})  # logged, not raised
    finally:
        caches._settings = None
