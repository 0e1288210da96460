"""When an account is erased: it leaves the speaking queue and the floor; private rooms it opened lose its name."""

from __future__ import annotations

from django.db import transaction

from rooms.models import Access, Hand, Room

ERASED_HANDLE = "[erased]"


@transaction.atomic
def do_forget_participant(*, author_key: str, handle: str, user_id: int | None = None) -> None:
    Hand.objects.filter(author_key=author_key).delete()
    Room.objects.filter(speaker_key=author_key).update(speaker_key="", speaker_handle="")
    if user_id is not None:
        # A counsellor's private room is named after them ("Private support with <handle> (counsellor)").
        for room in Room.objects.filter(access=Access.PRIVATE, chairs__pk=user_id, name__contains=handle):
            room.name = room.name.replace(handle, ERASED_HANDLE)
            room.save(update_fields=["name"])
