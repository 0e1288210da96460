"""Caps on open sockets (per person here, per address in chat/abuse.py), across processes, in the cache.

Each socket holds one of N slot keys. Keys live for SLOT_TTL_SECONDS and each process's hub refreshes
its live sockets' keys every SLOT_REFRESH_SECONDS, so a crashed process's slots free themselves within
two minutes. When the cache (Redis) is unreachable, a socket is let in untracked: a cap is an abuse limit,
and it must never lock people out of a meeting.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger("saathi.sockets")

SLOT_TTL_SECONDS = 120
SLOT_REFRESH_SECONDS = 30
UNTRACKED = ""  # a slot that was not recorded (no cap, or the cache is down): nothing to release


def _slot_key(author_key: str, index: int) -> str:
    digest = hashlib.blake2b(author_key.encode(), key=settings.SECRET_KEY.encode()[:64], digest_size=10).hexdigest()
    return f"saathi:sock:{digest}:{index}"


def claim_slot(author_key: str, conn_id: str) -> str | None:
    """Return the slot key this socket now holds, or None if the person has too many open."""
    keys = [_slot_key(author_key, index) for index in range(settings.SAATHI_MAX_SOCKETS_PER_MEMBER)]
    return claim_one_of(keys, conn_id)


def claim_one_of(keys: list[str], conn_id: str) -> str | None:
    """Hold the first free key of `keys`; None if all are held; UNTRACKED if the cache can't be reached."""
    try:
        held = cache.get_many(keys)  # one round trip, then try only the free ones
        for key in keys:
            if key not in held and cache.add(key, conn_id, timeout=SLOT_TTL_SECONDS):
                return key
    except Exception as exc:
        logger.warning("socket caps unavailable (%s); letting the socket in untracked", type(exc).__name__)
        return UNTRACKED
    return None


def refresh_slots(slots: dict[str, str]) -> None:
    """Keep live sockets' slots (key -> conn id) from expiring: one round trip for all of them."""
    if not slots:
        return
    try:
        cache.set_many(slots, timeout=SLOT_TTL_SECONDS)
    except Exception as exc:
        logger.warning("socket caps not refreshed (%s)", type(exc).__name__)


def release_slot(key: str | None) -> None:
    if not key:
        return
    try:
        cache.delete(key)
    except Exception as exc:  # it expires on its own
        logger.warning("socket cap not released (%s)", type(exc).__name__)
