"""A second factor for staff: moderators, counsellors and admins act as staff only after a TOTP check.

Until they pass it, a staff account is treated like any member: no moderation tools, no flags, no
dashboards. The verified device is remembered in the session (django-otp's own session key), so the
WebSocket, which shares the session, sees the same answer.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import STAFF_ROLES


def needs_second_factor(roles: frozenset[str]) -> bool:
    return settings.SAATHI_REQUIRE_STAFF_2FA and bool(roles & {role.value for role in STAFF_ROLES})


def session_verified(user: Any, session: Any) -> bool:
    """Return whether this session passed a TOTP check with one of this user's confirmed devices."""
    persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    if not persistent_id or not str(persistent_id).startswith("otp_totp.totpdevice/"):
        return False
    device_id = str(persistent_id).rsplit("/", 1)[-1]
    return TOTPDevice.objects.filter(pk=device_id, user_id=user.pk, confirmed=True).exists()


def unconfirmed_device(user: Any) -> TOTPDevice:
    """Return the device being set up (made on first visit), whose secret the person adds to their app."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
