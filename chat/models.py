from __future__ import annotations

import uuid

from django.db import models

from rooms.models import Room


class Message(models.Model):
    """One message in a room. `body` is the plain text the member typed; HTML is made on the way out."""

    class State(models.TextChoices):
        VISIBLE = "visible", "Visible"
        HELD = "held", "Held for review"
        DELETED = "deleted", "Deleted"

    # No index of its own: the (room, seq) constraint's index leads with the room, and serves every lookup by room.
    # One index fewer to update for every message stored.
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages", db_index=False)
    seq = models.PositiveBigIntegerField()  # the public id: 1, 2, 3... within the room
    author_key = models.CharField(max_length=32)  # "u:<id>" / "g:<id>"; never sent to peers (indexed in Meta)
    handle = models.CharField(max_length=24)  # the handle at the time of writing
    body = models.TextField()
    client_id = models.UUIDField(default=uuid.uuid4)
    state = models.CharField(max_length=16, choices=State.choices, default=State.VISIBLE)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["room_id", "seq"]
        # A person's messages are looked up by exact author_key (erasure). As a Meta index, not db_index=True:
        # on PostgreSQL that adds a second, pattern-matching index nothing here uses, written for every message.
        indexes = [models.Index(fields=["author_key"], name="message_author_key")]
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="message_seq_unique_in_room"),
            models.UniqueConstraint(fields=["room", "author_key", "client_id"], name="message_client_id_once"),
        ]

    def __str__(self) -> str:
        return f"{self.room_id}#{self.seq}"
