"""Builders shared by the moderation tests: people as the services see them, and a rota."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from accounts.identity import Participant
from accounts.models import Role, User
from accounts.services import participant_for, role_names
from chat.services import do_post_message
from moderation.models import RotaShift
from tests.factories import make_user


def who(user: User) -> Participant:
    """Return this person as a signed-in session sees them (staff: past the second factor)."""
    plain = participant_for(user=user, session=None)
    assert plain is not None
    return replace(plain, roles=role_names(user))


def counsellor(handle: str) -> User:
    user = make_user(roles=(Role.COUNSELLOR.value,))
    User.objects.filter(pk=user.pk).update(handle=handle)  # staff handles are set by admins, not sign-up
    user.refresh_from_db()
    return user


def rota(now: datetime, **people: User) -> None:
    """Put people on call around `now`: rota(now, primary=a, backup=b, supervisor=c)."""
    for position, user in people.items():
        RotaShift.objects.create(
            user=user, position=position, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=8)
        )


def post(room, user: User, body: str):  # type: ignore[no-untyped-def]
    return do_post_message(room=room, participant=who(user), body=body, client_id=uuid.uuid4()).message
