"""The crisis path in services: a crisis message is shown, flagged, and its writer is offered help."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from chat.models import Message
from moderation import services
from moderation.models import AuditEntry, Flag
from tests.factories import make_room, make_user
from tests.integration.test_moderation_helpers import counsellor, post, rota, who

pytestmark = pytest.mark.django_db

CRISIS = "I want to kill myself tonight, I have the pills ready"  # the detector rates this imminent
HIGH = "I have been thinking about suicide"


def test_a_crisis_message_is_shown_to_the_room_and_raises_a_flag_with_a_deadline_by_level(
    django_capture_on_commit_callbacks,
):
    now = timezone.now()
    rota(now, primary=counsellor("Kabir C"))
    room, member = make_room(), make_user(handle="Asha Rain")
    with django_capture_on_commit_callbacks(execute=True):
        message = post(room, member, CRISIS)
    assert message.state == Message.State.VISIBLE  # peers are part of the support: nothing hidden by default
    flag = Flag.objects.get()
    assert (flag.level, flag.categories, flag.handle, flag.message_id) == (
        "imminent",
        ["suicide"],
        "Asha Rain",
        message.pk,
    )
    assert timedelta(seconds=55) < flag.deadline - flag.raised_at <= timedelta(seconds=60)
    assert AuditEntry.objects.filter(flag=flag, action="flag_raised").exists()


def test_an_ordinary_message_raises_nothing():
    room, member = make_room(), make_user()
    post(room, member, "Thank you all, it helped to hear that today.")
    assert not Flag.objects.exists()


def test_staff_see_the_handle_message_context_and_room_but_never_the_account():
    room = make_room()
    member = make_user(handle="Asha Rain", email="asha@example.org")
    other = make_user(handle="Ravi Stone")
    post(room, other, "How is everyone doing this week?")
    post(room, member, HIGH)
    frame = services.flag_frame(Flag.objects.get())
    assert frame["handle"] == "Asha Rain" and frame["excerpt"] == HIGH and frame["room"] == room.slug
    assert [m["body"] for m in frame["context"]] == ["How is everyone doing this week?", HIGH]
    text = json.dumps(frame)
    for secret in (member.username, member.email, f"u:{member.pk}", other.username):
        assert secret not in text


def test_a_second_crisis_message_upgrades_the_open_flag_instead_of_raising_another():
    room, member = make_room(), make_user()
    post(room, member, HIGH)
    flag = Flag.objects.get()
    first_deadline = flag.deadline
    later = post(room, member, CRISIS)
    flag.refresh_from_db()
    assert Flag.objects.count() == 1
    assert flag.level == "imminent" and flag.message_id == later.pk and flag.deadline <= first_deadline
    assert AuditEntry.objects.filter(flag=flag, action="flag_upgraded").exists()


def test_a_room_that_holds_imminent_messages_keeps_them_from_peers_but_still_flags_them():
    room, member = make_room(hold_imminent=True), make_user()
    held = post(room, member, CRISIS)
    shown = post(room, member, HIGH)  # only imminent is held
    assert held.state == Message.State.HELD and shown.state == Message.State.VISIBLE
    assert Flag.objects.get().level == "imminent"


def test_id_like_to_talk_raises_a_high_flag_and_im_ok_is_recorded_on_it():
    room, member = make_room(), make_user()
    reply = services.do_support_reply(room=room, participant=who(member), wants_to_talk=True)
    assert reply["type"] == "notice" and "counsellor" in reply["text"]
    flag = Flag.objects.get()
    assert flag.level == "high" and flag.wants_to_talk and flag.source == Flag.Source.MEMBER
    services.do_support_reply(room=room, participant=who(member), wants_to_talk=False)
    flag.refresh_from_db()
    assert flag.member_said_ok and flag.state == Flag.State.OPEN  # "I'm OK" is noted; a counsellor still looks


def test_asking_to_talk_after_a_concern_upgrades_that_flag():
    room, member = make_room(), make_user()
    post(room, member, HIGH)
    services.do_support_reply(room=room, participant=who(member), wants_to_talk=True)
    flag = Flag.objects.get()
    assert flag.wants_to_talk and flag.source == Flag.Source.DETECTOR


def test_with_nobody_on_call_the_flag_goes_out_of_band_on_the_next_worker_round(
    settings, django_capture_on_commit_callbacks
):
    settings.SAATHI_CRISIS_EMAILS = ["oncall-desk@example.org"]
    room, member = make_room(), make_user(handle="Asha Rain")
    post(room, member, CRISIS)
    flag = Flag.objects.get()
    assert flag.deadline == flag.raised_at  # no primary: don't wait out the deadline
    with django_capture_on_commit_callbacks(execute=True):
        assert services.escalate_due_flags(now=timezone.now()) == 1
    flag.refresh_from_db()
    assert flag.step == Flag.Step.OUT_OF_BAND
    assert [m.to for m in mail.outbox] == [["oncall-desk@example.org"]]
    assert CRISIS not in mail.outbox[0].body and "Asha Rain" not in mail.outbox[0].body  # a link, not the words
    actions = list(AuditEntry.objects.filter(flag=flag).order_by("id").values_list("action", flat=True))
    assert actions[:1] == ["flag_raised"] and "out_of_band_sent" in actions
    assert actions.count("nobody_on_call") == 3  # primary, backup, supervisor
