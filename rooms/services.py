"""What rooms decide: who may come in, and whether a room is open now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from accounts.identity import Participant
from accounts.models import Role
from chat.protocol import CloseCode
from moderation.selectors import barring_restriction
from rooms.models import Access, Room


@dataclass(frozen=True, slots=True)
class AccessDecision:
    allowed: bool
    close_code: int | None = None
    reason: str = ""
    opens_at: datetime | None = None

    @classmethod
    def allow(cls) -> AccessDecision:
        return cls(allowed=True)

    @classmethod
    def deny(cls, code: CloseCode, reason: str, opens_at: datetime | None = None) -> AccessDecision:
        return cls(allowed=False, close_code=int(code), reason=reason, opens_at=opens_at)


@dataclass(frozen=True, slots=True)
class RoomState:
    phase: str  # "live", "doors_open", "ending", "scheduled", "closed"
    closes_at: datetime | None = None
    opens_at: datetime | None = None

    @property
    def accepts_messages(self) -> bool:
        return self.phase in ("live", "ending")

    @property
    def admits_people(self) -> bool:
        return self.phase in ("live", "ending", "doors_open")


def room_state(room: Room, *, now: datetime | None = None) -> RoomState:
    """Return where the room is in its meeting: an unscheduled room is always live."""
    return RoomState(phase="live")


def check_room_access(room: Room, participant: Participant | None, *, now: datetime | None = None) -> AccessDecision:
    """Decide whether this person may join this room. The one place the access rules live."""
    now = now or timezone.now()
    if participant is None:
        return AccessDecision.deny(CloseCode.NOT_SIGNED_IN, "Sign in, or join as a guest, to enter a meeting.")
    if barring_restriction(author_key=participant.author_key, room=room, now=now):
        return AccessDecision.deny(CloseCode.NOT_ALLOWED, "You can't join this meeting.")
    is_staff = participant.is_staff_role
    is_chair = participant.user_id is not None and room.chairs.filter(pk=participant.user_id).exists()
    if not (is_staff or is_chair):
        rule_reason = _access_rule_refusal(room, participant)
        if rule_reason:
            code = (
                CloseCode.NOT_SIGNED_IN
                if participant.is_guest and room.access != Access.OPEN
                else CloseCode.NOT_ALLOWED
            )
            return AccessDecision.deny(code, rule_reason)
    state = room_state(room, now=now)
    if not state.admits_people and not is_staff:
        return AccessDecision.deny(CloseCode.NOT_OPEN, "This meeting is not open now.", opens_at=state.opens_at)
    return AccessDecision.allow()


def _access_rule_refusal(room: Room, who: Participant) -> str:
    access = room.access
    if access == Access.OPEN:
        return ""
    if who.is_guest:
        return "This meeting is for signed-in members. Create a free account to join."
    if access == Access.CLOSED:
        return "" if not who.is_family else "This is a closed meeting for people in recovery."
    if access == Access.FAMILY:
        if who.is_family or room.open_to_members:
            return ""
        return "This group is for family members."
    if access == Access.WOMEN:
        return "" if who.attests_woman else "This circle is for women. Confirm on the room page to join."
    if access == Access.PRIVATE:
        return "This is a private room."
    return "You can't join this meeting."


def rooms_listed_for(participant: Participant | None) -> list[Room]:
    """Return the rooms to show in the room list, including ones this person can't enter yet."""
    rooms = Room.objects.exclude(access=Access.PRIVATE)
    if participant is not None and participant.is_family and not participant.is_staff_role:
        # A member's family never sees the members' closed rooms (and the reverse is just as private).
        rooms = rooms.exclude(access=Access.CLOSED)
    return list(rooms)


def chairs_room(room: Room, participant: Participant) -> bool:
    return participant.user_id is not None and (
        participant.has_role(Role.ADMIN) or room.chairs.filter(pk=participant.user_id).exists()
    )
