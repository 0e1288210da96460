"""Who is on the other end of a request or socket, in the few fields the product needs."""

from __future__ import annotations

from dataclasses import dataclass, field

from accounts.models import Role


@dataclass(frozen=True, slots=True)
class Participant:
    """A signed-in member or a guest. `author_key` is internal: it never leaves the server."""

    handle: str
    author_key: str  # "u:<user id>" or "g:<guest pass id>"
    roles: frozenset[str] = field(default_factory=frozenset)
    user_id: int | None = None
    guest_id: int | None = None
    is_family: bool = False
    attests_woman: bool = False

    @property
    def is_guest(self) -> bool:
        return self.user_id is None

    @property
    def is_staff_role(self) -> bool:
        return bool(self.roles & {Role.MODERATOR, Role.COUNSELLOR, Role.ADMIN})

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def display_role(self, *, chairs_room: bool = False) -> str:
        """Return the one role peers see next to the handle."""
        for role in (Role.ADMIN, Role.COUNSELLOR, Role.MODERATOR):
            if role in self.roles:
                return role.value
        if chairs_room:
            return Role.CHAIR.value
        if self.is_guest:
            return Role.GUEST.value
        return Role.FAMILY.value if self.is_family else Role.MEMBER.value
