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

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveBigIntegerField()  # the public id: 1, 2, 3... within the room
    author_key = models.CharField(max_length=32, db_index=True)  # "u:<id>" / "g:<id>"; never sent to peers
    handle = models.CharField(max_length=24)  # the handle at the time of writing
    body = models.TextField()
    client_id = models.UUIDField(default=uuid.uuid4)
    state = models.CharField(max_length=16, choices=State.choices, default=State.VISIBLE)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["room_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="message_seq_unique_in_room"),
            models.UniqueConstraint(fields=["room", "author_key", "client_id"], name="message_client_id_once"),
        ]

    def __str__(self) -> str:
        return f"{self.room_id}#{self.seq}"
