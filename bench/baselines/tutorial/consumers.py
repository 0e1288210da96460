"""The Channels tutorial's ChatConsumer, speaking Saathi's frame shapes.

Shape kept from the tutorial: `group_add` on connect, `group_send` on receive, and in the
group handler one `json.dumps` and one `send` per member.
"""

import itertools
import json
import os
from datetime import UTC, datetime

from channels.generic.websocket import AsyncWebsocketConsumer

# No store, so ids only need to be unique: process id plus a counter.
_IDS = itertools.count(1)
_PID = os.getpid()
_HANDLES = itertools.count(1)


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        slug = self.scope["url_route"]["kwargs"]["slug"]
        self.room_group_name = f"room.{slug}"
        query = dict(p.split("=", 1) for p in self.scope["query_string"].decode().split("&") if "=" in p)
        self.handle = query.get("handle") or f"guest-{next(_HANDLES)}"
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()
        await self.send(
            text_data=json.dumps(
                {
                    "type": "welcome",
                    "room": {"slug": slug, "name": slug, "state": "open"},
                    "you": {"handle": self.handle, "role": "guest"},
                    "history": [],
                    "last_id": 0,
                }
            )
        )

    async def disconnect(self, close_code):
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        frame = json.loads(text_data)
        await self.channel_layer.group_send(
            self.room_group_name,
            {
                "type": "chat.message",
                "id": _PID * 1_000_000_000 + next(_IDS),
                "handle": self.handle,
                "body": frame["body"],
                "sent_at": datetime.now(UTC).isoformat(),
                "client_id": frame["client_id"],
                "sender": self.channel_name,
            },
        )

    async def chat_message(self, event):
        out = {
            "type": "message",
            "id": event["id"],
            "handle": event["handle"],
            "body": event["body"],
            "sent_at": event["sent_at"],
        }
        if event["sender"] == self.channel_name:
            out["client_id"] = event["client_id"]
        await self.send(text_data=json.dumps(out))
