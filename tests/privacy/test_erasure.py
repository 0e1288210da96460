"""Erasure, proven generically: after an account is deleted, no row of any table links to the person.

Each test gives one person a footprint in every place the product can put one (messages, a crisis flag,
reports, restrictions both ways, the audit log, the speaking queue, a saved meeting, an authenticator,
sign-in throttle records, sessions, a chaired room, the admin's change log), deletes the account through
the real page, then scans EVERY table of EVERY model (`apps.get_models()`, M2M tables included) for a
foreign key to them, a generic relation to them, or their username, email, handle or author key `u:<id>`
in any text or JSON column. The policy keeps exactly one thing: a pseudonymous audit entry of the erasure.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.utils import timezone

from accounts.erasure import pseudonym
from accounts.models import RetiredHandle, Role, User
from chat.models import Message
from chat.services import ERASED_TEXT, check_post_message
from moderation import services as moderation
from moderation.models import AuditEntry, Flag, Restriction, RotaShift
from rooms.models import Hand, SavedMeeting
from tests.factories import PASSWORD, make_room, make_user
from tests.integration.test_moderation_helpers import counsellor, rota, who
from tests.meeting_factories import make_meeting
from tests.privacy.conftest import traces_of

pytestmark = pytest.mark.django_db

CRISIS = "I want to kill myself tonight, I have the pills ready"  # the detector rates this imminent
# The one column the policy keeps on purpose: a retired handle's key, so nobody inherits a past.
KEPT_ON_PURPOSE = {(RetiredHandle._meta.db_table, "handle_key")}


def post(room, user, body):  # type: ignore[no-untyped-def]
    return check_post_message(room=room, participant=who(user), body=body, client_id=uuid.uuid4()).message


def delete_in_the_browser_way(user: User) -> None:
    """Delete the account as the page does: signed in, password and confirmation, POST."""
    client = Client()
    client.force_login(user)
    assert client.get("/accounts/me/").status_code == 200
    response = client.post("/accounts/me/delete/", {"password": PASSWORD, "confirm": "on"})
    assert response.status_code == 302


def assert_nothing_links_to(
    user: User, *, handle: str, username: str, email: str, user_id: int, also_allow: set[tuple] = frozenset()
) -> None:
    allow = KEPT_ON_PURPOSE | set(also_allow)
    traces = traces_of(user_id=user_id, username=username, email=email, handle=handle, allow=allow)
    assert traces == [], "rows still linking to an erased account:\n  " + "\n  ".join(map(str, traces))
    stand_in = pseudonym(f"u:{user_id}")
    erased = AuditEntry.objects.filter(action="account_erased")
    assert [(e.actor_key, e.actor_handle) for e in erased] == [(stand_in, "[erased]")]
    assert not User.objects.filter(pk=user_id).exists()


def test_a_deleted_member_leaves_no_row_that_links_to_them(django_capture_on_commit_callbacks):
    now = timezone.now()
    kabir = counsellor("Counsellor Kabir")
    rota(now, primary=kabir)
    member = make_user(handle="Wren Meadow", email="wren.meadow@example.org")
    User.objects.filter(pk=member.pk).update(username="wren_meadow_77", sobriety_date=now.date())
    member.refresh_from_db()
    other = make_user(handle="Ravi Stone")
    chair_room, room = make_room(), make_room()
    chair_room.chairs.add(member)
    key = f"u:{member.pk}"

    with django_capture_on_commit_callbacks(execute=True):
        mine = post(room, member, "Day 40 today. My sponsor helped.")
        post(room, member, CRISIS)  # a flag, paged to the counsellor, with the handle on it
        theirs = post(room, other, "Well done, Wren Meadow!")  # a peer names them: the peer's words stay
        moderation.check_report(room=room, reporter=who(member), message_id=theirs.seq, reason="unkind")
        moderation.check_report(room=room, reporter=who(other), message_id=mine.seq, reason="spam?")
        target = moderation.Target(author_key=key, handle=member.handle)
        moderation.do_mute(room=room, actor=who(kabir), target=target, minutes=10, reason="cool off")
        other_target = moderation.Target(author_key=f"u:{other.pk}", handle=other.handle)
        moderation.do_mute(room=chair_room, actor=who(member), target=other_target, minutes=5, reason="as chair")
        flag = Flag.objects.get(author_key=key)
        moderation.do_open_private_room(flag_id=flag.pk, actor=who(kabir))
    Hand.objects.create(room=room, author_key=key, handle=member.handle, raised_at=now)  # in the speaking queue...
    type(room).objects.filter(pk=room.pk).update(speaker_key=key, speaker_handle=member.handle)  # ...and speaking
    SavedMeeting.objects.create(user=member, meeting=make_meeting())
    RotaShift.objects.create(user=member, position="backup", starts_at=now, ends_at=now + timedelta(hours=1))
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.create(user=member, name="phone", confirmed=True)
    Client().post("/accounts/sign-in/", {"username": member.username, "password": "not the password"})
    admin = make_user(roles=(Role.ADMIN.value,))
    LogEntry.objects.create(
        user=admin,
        content_type=ContentType.objects.get_for_model(User),
        object_id=str(member.pk),
        object_repr=str(member),
        action_flag=CHANGE,
        change_message="[]",
    )
    Client().force_login(member)  # a second device: another session
    facts = {"handle": member.handle, "username": member.username, "email": member.email, "user_id": member.pk}
    assert traces_of(**facts, allow=KEPT_ON_PURPOSE)  # the scan sees the footprint before erasure

    with django_capture_on_commit_callbacks(execute=True):
        delete_in_the_browser_way(member)

    # A peer's words that name them are the peer's, not theirs: the policy doesn't rewrite other people.
    assert_nothing_links_to(member, **facts, also_allow={("chat_message", "body", theirs.pk)})
    # The documented policy for what they wrote: in place, as "[removed]", linked to nobody.
    assert set(Message.objects.filter(pk=mine.pk).values_list("body", "handle")) == {(ERASED_TEXT, ERASED_TEXT)}
    assert Message.objects.get(pk=theirs.pk).body == "Well done, Wren Meadow!"  # not theirs to erase
    assert not Restriction.objects.filter(author_key=key).exists()


def test_a_deleted_counsellor_leaves_no_row_that_links_to_them(django_capture_on_commit_callbacks):
    """Staff erase too: the flags they took, the reports they closed and the rooms they opened."""
    now = timezone.now()
    kabir = counsellor("Counsellor Kabir")
    kabir.groups.add(Group.objects.get_or_create(name=Role.MODERATOR.value)[0])  # closes reports too
    moderator = make_user(roles=(Role.MODERATOR.value,))
    rota(now, primary=kabir)
    member, room = make_user(handle="Asha Rain"), make_room()
    with django_capture_on_commit_callbacks(execute=True):
        post(room, member, CRISIS)
        flag = Flag.objects.get()
        moderation.do_acknowledge_flag(flag_id=flag.pk, actor=who(kabir))
        moderation.do_open_private_room(flag_id=flag.pk, actor=who(kabir))
        moderation.do_add_handoff_note(flag_id=flag.pk, actor=who(kabir), note="Spoke for an hour.")
        message = post(room, member, "Thank you.")
        report = moderation.check_report(room=room, reporter=who(moderator), message_id=message.seq, reason="check")
        moderation.do_close_report(report_id=report.pk, actor=who(kabir), state="dismissed")
    facts = {"handle": kabir.handle, "username": kabir.username, "email": kabir.email, "user_id": kabir.pk}

    with django_capture_on_commit_callbacks(execute=True):
        delete_in_the_browser_way(kabir)

    assert_nothing_links_to(kabir, **facts)
    assert Flag.objects.get(pk=flag.pk).handle == "Asha Rain"  # the member's flag itself stays for follow-up
