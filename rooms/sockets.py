"""The meeting's frames on the room socket (hand, the chair's call and tools, milestones).

Thin: each handler parses nothing (chat/protocol.py did) and decides nothing (rooms/services.py does);
it makes one service call and returns the frames for this socket. Room-wide frames go out after commit.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.utils import timezone

from chat import extensions, protocol
from rooms import services


async def hand(join: Any, request: protocol.HandRequest, conn_id: str) -> list[dict[str, Any]]:
    await database_sync_to_async(services.do_raise_hand)(
        room=join.room, participant=join.participant, up=request.up, now=timezone.now()
    )
    return []


async def call_next(join: Any, request: protocol.ModRequest, conn_id: str) -> list[dict[str, Any]]:
    await database_sync_to_async(services.do_call_next)(
        room=join.room, participant=join.participant, now=timezone.now()
    )
    return []


async def chair(join: Any, request: protocol.ChairRequest, conn_id: str) -> list[dict[str, Any]]:
    await database_sync_to_async(services.do_run_floor)(
        room=join.room, participant=join.participant, action=request.action, seconds=request.seconds, now=timezone.now()
    )
    return []


async def milestone(join: Any, request: protocol.MilestoneRequest, conn_id: str) -> list[dict[str, Any]]:
    await database_sync_to_async(services.do_share_milestone)(
        room=join.room, participant=join.participant, now=timezone.now()
    )
    return []


def register() -> None:
    extensions.register(protocol.HandRequest, hand)
    extensions.register(protocol.ModRequest, call_next, action=protocol.ModAction.NEXT.value)
    extensions.register(protocol.ChairRequest, chair)
    extensions.register(protocol.MilestoneRequest, milestone)
