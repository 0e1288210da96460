"""Small builders for tests: real rows through the real services."""

from __future__ import annotations

import itertools

from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import Role, User
from accounts.services import do_sign_up
from rooms.models import Access, Programme, Room

_counter = itertools.count(1)
PASSWORD = "a-long-test-password-42"  # noqa: S105


def make_room(*, slug: str | None = None, access: str = Access.OPEN, programme: str = Programme.GENERAL, **extra) -> Room:
    n = next(_counter)
    return Room.objects.create(slug=slug or f"room-{n}", name=f"Room {n}", access=access, programme=programme, **extra)


def make_user(*, kind: str = User.Kind.RECOVERY, roles: tuple[str, ...] = (), handle: str | None = None, **extra) -> User:
    n = next(_counter)
    user = do_sign_up(username=f"user{n}", password=PASSWORD, handle=handle or f"Tester {chr(65 + n % 26)}{n}x", kind=kind)
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    for key, value in extra.items():
        setattr(user, key, value)
    if extra:
        user.save()
    return user


def make_staff(role: Role) -> User:
    return make_user(roles=(role.value,))


def session_cookie_for(user: User | None = None, *, guest_handle: str | None = None) -> str:
    """Return a Cookie header for a signed-in user or a fresh guest (through the real HTTP views)."""
    from django.conf import settings

    client = Client()
    if user is not None:
        client.force_login(user)
    else:
        data = {"handle": guest_handle} if guest_handle else {}
        response = client.post("/guest/", data)
        assert response.status_code == 302, response.content[:500]
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
