"""The moderation channel (/ws/moderation/): live flags and reports for moderators and counsellors.

Thin: who may connect and what each socket may see is decided by moderation/services.py (`staff_access`);
this consumer translates frames into service calls and layer events into frames.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import DatabaseError

from accounts.services import participant_for
from chat import protocol
from chat.broadcast import author_tag, control_group, moderation_group
from chat.failures import log_failure
from chat.protocol import CloseCode, ErrorCode, ProtocolError
from moderation import services

logger = logging.getLogger("saathi.moderation")


class ModerationConsumer(AsyncWebsocketConsumer):
    access: services.StaffAccess | None = None
    joined = False

    async def connect(self) -> None:
        await self.accept()
        try:
            access, someone, welcome = await database_sync_to_async(_open)(
                self.scope.get("user"), self.scope.get("session")
            )
        except DatabaseError as exc:
            log_failure(logger, "moderation join", exc)
            await self.close(code=1013)
            return
        if access is None or welcome is None:
            code = CloseCode.NOT_ALLOWED if someone else CloseCode.NOT_SIGNED_IN
            await self.send_frame(protocol.error_frame(ErrorCode.NOT_ALLOWED, "This channel is for staff."))
            await self.close(code=int(code))
            return
        self.access = access
        self.tag = author_tag(access.participant.author_key)
        await self.channel_layer.group_add(moderation_group(), self.channel_name)
        # Sign-out, a password change, deletion or a role change must reach this socket too, or a demoted
        # or signed-out moderator would keep receiving crisis flags.
        await self.channel_layer.group_add(control_group(), self.channel_name)
        self.joined = True
        await self.send_frame(welcome)

    async def disconnect(self, code: int) -> None:
        if self.joined:
            await self.channel_layer.group_discard(moderation_group(), self.channel_name)
            await self.channel_layer.group_discard(control_group(), self.channel_name)
            self.joined = False

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.access is None:
            return
        try:
            request = protocol.parse_moderation_frame(text_data if text_data is not None else bytes_data)
            if isinstance(request, protocol.PingRequest):
                await self.send_frame(protocol.pong_frame())
                return
            await database_sync_to_async(services.check_flag_request)(request=request, actor=self.access.participant)
        except ProtocolError as refusal:
            await self.send_frame(refusal.frame())
        except Exception as exc:  # never let one frame take the socket down
            log_failure(logger, "moderation frame", exc)
            await self.send_frame(protocol.error_frame(ErrorCode.INVALID, "That frame could not be handled."))

    async def moderation_frame(self, event: dict[str, Any]) -> None:
        """A flag, flag update or report for staff: only to sockets whose holder may see it."""
        if self.access is None or event.get("audience") not in self.access.audiences:
            return
        frame = dict(event["frame"])
        frame["paged"] = self.tag in event.get("paged", ())
        await self.send_frame(frame)

    async def participant_control(self, event: dict[str, Any]) -> None:
        """Close this staff socket when its holder signs out, is erased or changes role (room-only bans skip it)."""
        if self.access is None or event.get("author") != self.tag or event.get("rooms") is not None:
            return
        self.access = None  # nothing more is sent or taken on this socket
        await self.close(code=int(event.get("code", CloseCode.NOT_ALLOWED)))
        await self.disconnect(0)  # leave the groups now; daphne's disconnect comes later

    async def participant_frame(self, event: dict[str, Any]) -> None:
        """A frame for one person's room sockets: not for this channel."""

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=protocol.encode(frame))


def _open(user: Any, session: Any) -> tuple[services.StaffAccess | None, bool, dict[str, Any] | None]:
    """Return this socket's staff access, whether it is anyone at all (a member, a guest), and its welcome."""
    participant = participant_for(user=user, session=session)
    access = services.staff_access(participant)
    if access is None:
        return None, participant is not None, None
    return access, True, services.moderation_welcome(access)
