"""Reads worth a name."""

from __future__ import annotations

from chat.broadcast import author_tag
from chat.frames import encoded_pair, message_frame
from chat.models import Message
from chat.protocol import encode
from rooms.models import Room


def recent_history(room: Room, *, limit: int) -> list[Message]:
    """Return the last `limit` visible messages of a room, oldest first."""
    rows = list(room.messages.filter(state=Message.State.VISIBLE).order_by("-seq")[:limit])
    rows.reverse()
    return rows


# The welcome frame carries the history; daphne refuses any frame over its limit, in either direction, so
# the history is cut (newest kept) well below it. Older messages are a `resume` away.
HISTORY_BUDGET_BYTES = 40 * 1024


def history_frames(room: Room, *, limit: int, author_key: str) -> list[dict]:
    """Return recent messages for a welcome frame, newest kept first, within HISTORY_BUDGET_BYTES."""
    frames: list[dict] = []
    budget = HISTORY_BUDGET_BYTES
    for message in reversed(recent_history(room, limit=limit)):
        frame = message_frame(message, own=message.author_key == author_key)
        budget -= len(encode(frame).encode())
        if budget < 0:
            break
        frames.append(frame)
    frames.reverse()
    return frames


def encoded_messages_after(*, room_id: int, after: int, limit: int) -> list[tuple[int, str | None, str | None, str]]:
    """Return (seq, peers' text, author's text, author tag) for messages after `after`, in order.

    Held and deleted messages come back with no peers' text, so a reader's position still moves past them.
    """
    rows = Message.objects.filter(room_id=room_id, seq__gt=after).order_by("seq")[:limit]
    out: list[tuple[int, str | None, str | None, str]] = []
    for message in rows:
        text, own = encoded_pair(message)
        if message.state == Message.State.DELETED:
            own = None
        out.append((message.seq, text, own, author_tag(message.author_key)))
    return out
