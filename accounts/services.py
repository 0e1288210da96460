"""What the accounts app does: sign-up, guest passes, and who a request or socket belongs to."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.sessions.backends.base import SessionBase
from django.db import IntegrityError, transaction

from accounts.handles import CleanHandle, HandleError, clean_handle, suggest_handle
from accounts.identity import Participant
from accounts.models import STAFF_ROLES, GuestPass, RetiredHandle, Role, User

GUEST_SESSION_KEY = "saathi_guest"


def check_handle(raw: str, *, exclude_user_id: int | None = None, exclude_guest_id: int | None = None) -> CleanHandle:
    """Validate a handle and make sure nobody else holds it (or a look-alike); raise HandleError."""
    handle = clean_handle(raw)
    taken = (
        User.objects.filter(handle_key=handle.key).exclude(pk=exclude_user_id).exists()
        or GuestPass.objects.filter(handle_key=handle.key).exclude(pk=exclude_guest_id).exists()
        or RetiredHandle.objects.filter(handle_key=handle.key).exists()
    )
    if taken:
        raise HandleError("That handle (or one that looks just like it) is taken. Try another.")
    return handle


def free_suggested_handle(attempts: int = 20) -> str:
    """Return a suggested handle that nobody holds yet."""
    for _ in range(attempts):
        candidate = suggest_handle()
        try:
            check_handle(candidate)
        except HandleError:
            continue
        return candidate
    return f"Friend {secrets.randbelow(900000) + 100000}"


@transaction.atomic
def do_sign_up(*, username: str, password: str, handle: str, kind: str, email: str = "") -> User:
    """Create a member or family account with its role group. Raises HandleError for a bad handle."""
    clean = check_handle(handle)
    user = User(username=username, email=email, handle=clean.display, handle_key=clean.key, kind=kind)
    user.set_password(password)
    try:
        user.save()
    except IntegrityError as exc:  # two sign-ups raced for the same handle
        raise HandleError("That handle was just taken. Try another.") from exc
    role = Role.FAMILY if kind == User.Kind.FAMILY else Role.MEMBER
    group, _ = Group.objects.get_or_create(name=role.value)
    user.groups.add(group)
    return user


@transaction.atomic
def do_take_guest_pass(*, session: SessionBase, handle: str) -> GuestPass:
    """Give this browser session a guest seat under `handle` (or rename its existing one)."""
    existing = guest_pass_for_session(session)
    clean = check_handle(handle, exclude_guest_id=existing.pk if existing else None)
    try:
        if existing:
            existing.handle, existing.handle_key = clean.display, clean.key
            existing.save(update_fields=["handle", "handle_key", "last_seen_at"])
            return existing
        guest = GuestPass.objects.create(token=secrets.token_urlsafe(32), handle=clean.display, handle_key=clean.key)
    except IntegrityError as exc:
        raise HandleError("That handle was just taken. Try another.") from exc
    session[GUEST_SESSION_KEY] = guest.token
    return guest


@transaction.atomic
def do_end_guest_pass(*, session: SessionBase) -> None:
    """Delete this session's guest seat (its handle is free again) and close its sockets."""
    from chat import broadcast
    from chat.protocol import CloseCode

    guest = guest_pass_for_session(session)
    if guest is None:
        return
    broadcast.publish_control_on_commit(author_key=f"g:{guest.pk}", action="close", code=CloseCode.NOT_SIGNED_IN)
    guest.delete()


def guest_pass_for_session(session: SessionBase) -> GuestPass | None:
    token = session.get(GUEST_SESSION_KEY)
    if not token:
        return None
    return GuestPass.objects.filter(token=token).first()


def role_names(user: User) -> frozenset[str]:
    names = set(user.groups.values_list("name", flat=True))
    if user.is_superuser:
        names.add(Role.ADMIN.value)
    return frozenset(names)


def participant_for(*, user: Any, session: SessionBase | None) -> Participant | None:
    """Return who this is (a signed-in account first, else a guest pass), or None if neither."""
    if user is not None and getattr(user, "is_authenticated", False) and user.is_active:
        from accounts.twofactor import needs_second_factor, session_verified

        roles = role_names(user)
        if needs_second_factor(roles) and not session_verified(user, session):
            roles = roles - {role.value for role in STAFF_ROLES}  # a member until the second factor passes
        return Participant(
            handle=user.handle,
            author_key=f"u:{user.pk}",
            roles=roles,
            user_id=user.pk,
            is_family=user.kind == User.Kind.FAMILY,
            attests_woman=user.attests_woman,
        )
    if session is not None:
        guest = guest_pass_for_session(session)
        if guest is not None:
            return Participant(handle=guest.handle, author_key=f"g:{guest.pk}", guest_id=guest.pk)
    return None


# --- Export and erasure ------------------------------------------------------------------------------------


def export_account(user: User) -> dict[str, Any]:
    """Return everything Saathi holds about this person, as one JSON-able document."""
    from chat.models import Message
    from moderation.models import Restriction

    author_key = f"u:{user.pk}"
    messages = Message.objects.filter(author_key=author_key).select_related("room").order_by("created_at")
    return {
        "account": {
            "username": user.username,
            "email": user.email,
            "handle": user.handle,
            "kind": user.kind,
            "attests_woman": user.attests_woman,
            "joined": user.date_joined.isoformat(),
            "last_sign_in": user.last_login.isoformat() if user.last_login else None,
            "roles": sorted(role_names(user)),
        },
        "messages": [
            {"room": m.room.slug, "id": m.seq, "sent_at": m.created_at.isoformat(), "body": m.body, "state": m.state}
            for m in messages
        ],
        "restrictions": [
            {"kind": r.kind, "room": r.room.slug if r.room else None, "until": r.until.isoformat() if r.until else None}
            for r in Restriction.objects.filter(author_key=author_key).select_related("room")
        ],
    }


@transaction.atomic
def do_delete_account(*, user: User) -> None:
    """Erase an account (see accounts/erasure.py for the policy); its open sockets close."""
    from django.contrib.sessions.models import Session

    from accounts.erasure import pseudonym
    from chat import broadcast
    from chat.protocol import CloseCode
    from chat.services import do_erase_author_messages
    from moderation.erasure import do_pseudonymise_author
    from rooms.erasure import do_forget_participant

    author_key = f"u:{user.pk}"
    stand_in = pseudonym(author_key)
    do_erase_author_messages(author_key=author_key, pseudonym=stand_in)
    do_pseudonymise_author(author_key=author_key, handle=user.handle, pseudonym=stand_in)
    do_forget_participant(author_key=author_key, handle=user.handle, user_id=user.pk)
    _forget_admin_log_object(user, stand_in)
    RetiredHandle.objects.get_or_create(handle_key=user.handle_key)
    _delete_sessions_of(Session, user.pk)
    _delete_sign_in_records(user.username)
    broadcast.publish_control_on_commit(author_key=author_key, action="close", code=CloseCode.NOT_SIGNED_IN)
    user.delete()


def _forget_admin_log_object(user: User, stand_in: str) -> None:
    # The admin's change log keeps what an admin did to this account, but not which account or its handle.
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(User), object_id=str(user.pk)).update(
        object_id=stand_in, object_repr="[erased]"
    )


def _delete_sessions_of(session_model: Any, user_id: int) -> None:
    # Session data is signed and encoded, so it can't be filtered in SQL; erasure is rare, a scan is fine.
    for session in session_model.objects.iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user_id):
            session.delete()


def _delete_sign_in_records(username: str) -> None:
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    for model in (AccessAttempt, AccessFailureLog, AccessLog):
        model.objects.filter(username=username).delete()


def purge_idle_guest_passes(*, now: datetime) -> int:
    """Forget guest seats idle longer than a session lives, so their handles are free again."""
    cutoff = now - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    return GuestPass.objects.filter(last_seen_at__lt=cutoff).delete()[0]
