"""Moderation's frames on the room socket: `mod`, `report` and `support_reply`.

Thin: chat/protocol.py parsed the frame, moderation/services.py decides; each handler makes one service call
and returns the frames for this socket. What others see goes out after commit, from the service.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from chat import extensions, protocol
from moderation import services


async def mod(join: Any, request: protocol.ModRequest, conn_id: str) -> list[dict[str, Any]]:
    return await database_sync_to_async(services.check_mod_action)(
        room=join.room, actor=join.participant, request=request
    )


async def report(join: Any, request: protocol.ReportRequest, conn_id: str) -> list[dict[str, Any]]:
    await database_sync_to_async(services.check_report)(
        room=join.room, reporter=join.participant, message_id=request.message_id, reason=request.reason
    )
    return [
        protocol.notice_frame(
            protocol.NoticeCode.REPORT_RECEIVED,
            "Thank you for telling us. A moderator will look at it; nobody is told who reported it.",
        )
    ]


async def support_reply(join: Any, request: protocol.SupportReplyRequest, conn_id: str) -> list[dict[str, Any]]:
    frame = await database_sync_to_async(services.do_support_reply)(
        room=join.room, participant=join.participant, wants_to_talk=request.wants_to_talk
    )
    return [frame]


def register() -> None:
    # `mod` `next` (the speaking queue) is served by rooms/sockets.py; every other action is served here.
    extensions.register(protocol.ModRequest, mod)
    extensions.register(protocol.ReportRequest, report)
    extensions.register(protocol.SupportReplyRequest, support_reply)
