"""Small builders for tests: real rows through the real services."""

from __future__ import annotations

import itertools

from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import Role, User
from accounts.services import do_sign_up
from rooms.models import Access, Programme, Room

_counter = itertools.count(1)
PASSWORD = "a-long-test-password-42"


def make_room(
    *, slug: str | None = None, access: str = Access.OPEN, programme: str = Programme.GENERAL, **extra
) -> Room:
    n = next(_counter)
    return Room.objects.create(slug=slug or f"room-{n}", name=f"Room {n}", access=access, programme=programme, **extra)


def make_user(
    *, kind: str = User.Kind.RECOVERY, roles: tuple[str, ...] = (), handle: str | None = None, **extra
) -> User:
    n = next(_counter)
    user = do_sign_up(
        username=f"user{n}", password=PASSWORD, handle=handle or f"Tester {chr(65 + n % 26)}{n}x", kind=kind
    )
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    for key, value in extra.items():
        setattr(user, key, value)
    if extra:
        user.save()
    return user


def make_staff(role: Role) -> User:
    return make_user(roles=(role.value,))


def _pass_second_factor(client: Client, user: User) -> None:
    """Give a staff session a confirmed TOTP device check, as the sign-in flow would."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="test", confirmed=True
    )
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


def session_cookie_for(
    user: User | None = None, *, guest_handle: str | None = None, verified_staff: bool = True
) -> str:
    """Return a Cookie header for a signed-in user or a fresh guest (through the real HTTP views)."""
    from django.conf import settings

    client = Client()
    if user is not None:
        client.force_login(user)
        if verified_staff:
            _pass_second_factor(client, user)
    else:
        data = {"handle": guest_handle} if guest_handle else {}
        response = client.post("/guest/", data)
        assert response.status_code == 302, response.content[:500]
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def staff_client(user: User) -> Client:
    """Return a test Client signed in as this user, past the staff second factor."""
    client = Client()
    client.force_login(user)
    _pass_second_factor(client, user)
    return client
