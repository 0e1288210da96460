"""Per-address limits on room sockets: how fast one address may open them, and how many it may hold.

The address is `scope["client"]`: the peer's address, or, only when daphne runs with `--proxy-headers`
(behind nginx), the one the proxy put in X-Forwarded-For. A client can't choose its bucket by sending
that header to a daphne that doesn't trust it. Addresses are never logged and never stored as they
are: the limiter and the cache only see a keyed hash of one.

The per-person cap lives in chat/sockets.py; these caps are for people without an account, or with many.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings

from chat import ratelimit, sockets


def _address_tag(scope: dict[str, Any]) -> str | None:
    client = scope.get("client")
    if not client or not client[0]:
        return None  # a Unix socket or an in-process test: no address to count
    key = settings.SECRET_KEY.encode()[:64]
    return hashlib.blake2b(str(client[0]).encode(), key=key, digest_size=10, person=b"saathi-ip").hexdigest()


def allow_handshake(scope: dict[str, Any]) -> bool:
    """Count one socket handshake against its address; return False if that address opens too many."""
    tag = _address_tag(scope)
    if tag is None or not settings.SAATHI_HANDSHAKES_PER_IP:
        return True
    return ratelimit.hit(settings.SAATHI_HANDSHAKES_PER_IP, "ws-handshake", tag)


def claim_address_slot(scope: dict[str, Any], conn_id: str) -> str | None:
    """Hold one of the address's open-socket slots; return its key ("" when untracked), or None if all are taken."""
    tag = _address_tag(scope)
    limit = settings.SAATHI_MAX_SOCKETS_PER_IP
    if tag is None or limit <= 0:
        return sockets.UNTRACKED
    return sockets.claim_one_of([f"saathi:ipsock:{tag}:{index}" for index in range(limit)], conn_id)


def release_address_slot(key: str) -> None:
    sockets.release_slot(key)
