"""Reads about restrictions, worth a name because access decisions depend on them."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from moderation.models import PrivateRoomInvite, Restriction
from rooms.models import Room


def barring_restriction(*, author_key: str, room: Room, now: datetime | None = None) -> Restriction | None:
    """Return the ban or removal that keeps this person out of this room, if any."""
    return (
        Restriction.objects.active(now)
        .filter(author_key=author_key)
        .filter(
            Q(kind=Restriction.Kind.REMOVE, room=room)
            | Q(kind=Restriction.Kind.BAN, programme="")
            | Q(kind=Restriction.Kind.BAN, programme=room.programme)
        )
        .first()
    )


def active_mute(*, author_key: str, room: Room, now: datetime | None = None) -> Restriction | None:
    return (
        Restriction.objects.active(now)
        .filter(author_key=author_key, kind=Restriction.Kind.MUTE)
        .filter(Q(room=room) | Q(room__isnull=True))
        .first()
    )


def invited_to_private_room(*, room: Room, author_key: str) -> bool:
    """Return whether this private room was opened for this person."""
    return PrivateRoomInvite.objects.filter(room=room, member_key=author_key).exists()
