"""Build server frames from models: display fields only, never an account id, username or email."""

from __future__ import annotations

from typing import Any

from chat import protocol
from chat.models import Message
from chat.sanitize import render_html


def message_frame(message: Message, *, own: bool = False) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": protocol.ServerType.MESSAGE.value,
        "id": message.seq,
        "handle": message.handle,
        "body": message.body,
        "html": render_html(message.body),
        "sent_at": message.created_at.isoformat().replace("+00:00", "Z"),
    }
    if own:
        frame["client_id"] = str(message.client_id)
        if message.state == Message.State.HELD:
            frame["held"] = True
    return frame


def encoded_pair(message: Message) -> tuple[str | None, str]:
    """Return (text for peers, text for the author): peers get nothing for a held or deleted message."""
    own_frame = message_frame(message, own=True)
    own = protocol.encode(own_frame)
    if message.state != Message.State.VISIBLE:
        return None, own
    peers_frame = {key: value for key, value in own_frame.items() if key not in _AUTHOR_ONLY}  # rendered once
    return protocol.encode(peers_frame), own


_AUTHOR_ONLY = ("client_id", "held")
