"""A cap on open sockets per person, across processes, in the shared cache.

Each socket holds one of N slot keys for its author; keys expire on their own, so a crashed process
can't lock anyone out for long.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache

SLOT_TTL_SECONDS = 6 * 60 * 60


def _slot_key(author_key: str, index: int) -> str:
    digest = hashlib.blake2b(author_key.encode(), key=settings.SECRET_KEY.encode()[:64], digest_size=10).hexdigest()
    return f"saathi:sock:{digest}:{index}"


def claim_slot(author_key: str, conn_id: str) -> str | None:
    """Return the slot key this socket now holds, or None if the person has too many open."""
    for index in range(settings.SAATHI_MAX_SOCKETS_PER_MEMBER):
        key = _slot_key(author_key, index)
        if cache.add(key, conn_id, timeout=SLOT_TTL_SECONDS):
            return key
    return None


def release_slot(key: str) -> None:
    cache.delete(key)
