"""A store that keeps nothing: the benchmark's "persistence and crisis scan off" variant of Saathi.

Used only by the `saathi-nostore` target (bench/saathi_settings.py points SAATHI_SEND_STORE here), so the
benchmark can put a number on what storing every message and scanning it costs: the same server, sockets,
authentication, per-person rate limit (Redis), sanitising and fan-out, but no database and no scan: messages
are numbered in memory (one process, fresh rooms), not checked against the room's rules (a database read),
not scanned, and not written. Never used by the site.

Through run 30 this variant skipped the rate limit too, so the on/off row also charged the store for a cost
that is neither persistence nor the scan (~6 us of Python and ~9 us of Redis a message, `bench.bench_store`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime

from django.utils import timezone

from chat import broadcast
from chat.frames import encoded_pair
from chat.models import Message
from chat.protocol import ProtocolError
from chat.services import PostResult, SendIntent, rate_limited, within_send_rate

_last_seq: dict[int, int] = {}
_lock = threading.Lock()


def post_messages(sends: Sequence[SendIntent], *, now: datetime | None = None) -> list[PostResult | ProtocolError]:
    now = now or timezone.now()
    results: list[PostResult | ProtocolError] = []
    within_rate = within_send_rate(sends)  # as the real store counts them: one Redis call a batch
    with _lock:
        for send, allowed in zip(sends, within_rate, strict=True):
            if not allowed:
                results.append(rate_limited(send))
                continue
            seq = _last_seq[send.room.pk] = _last_seq.get(send.room.pk, send.room.last_seq) + 1
            message = Message(
                room=send.room,
                seq=seq,
                author_key=send.participant.author_key,
                handle=send.participant.handle,
                body=send.body,
                client_id=send.client_id,
                created_at=now,
            )
            text, own = encoded_pair(message)  # sanitised and encoded as the real store does
            broadcast.publish_room_frame_on_commit(  # no transaction here: published at once
                slug=send.room.slug, seq=seq, text=text, own=own, author_key=send.participant.author_key
            )
            results.append(PostResult(message=message, created=True))
    return results
