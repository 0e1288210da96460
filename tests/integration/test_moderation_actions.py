"""Moderation actions as services: each one does what it says, is audited, and only chairs and moderators may."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Role
from chat.models import Message
from chat.protocol import ModAction, ModRequest, ProtocolError
from moderation import services
from moderation.models import AuditEntry, Report, Restriction
from moderation.selectors import active_mute, barring_restriction
from rooms.models import Programme, Room
from tests.factories import make_room, make_user
from tests.integration.test_moderation_helpers import post, who

pytestmark = pytest.mark.django_db


def mod(room, actor, action: ModAction, target="", **extra):  # type: ignore[no-untyped-def]
    request = ModRequest(
        action=action, target=str(target), minutes=extra.get("minutes"), seconds=extra.get("seconds"), reason="test"
    )
    return services.check_mod_action(room=room, actor=who(actor), request=request)


@pytest.fixture
def scene():  # type: ignore[no-untyped-def]
    room = make_room(programme=Programme.NA)
    chair = make_user(handle="Meena Lamp")
    room.chairs.add(chair)
    return room, chair, make_user(handle="Noisy One"), make_user(roles=(Role.MODERATOR.value,))


def test_mute_for_n_minutes_then_unmute(scene):
    room, chair, member, _ = scene
    done = mod(room, chair, ModAction.MUTE, member.handle, minutes=5)
    assert done[0]["code"] == "mod_done" and "5 minutes" in done[0]["text"]
    mute = active_mute(author_key=f"u:{member.pk}", room=room)
    assert mute is not None and timedelta(minutes=4) < mute.until - timezone.now() <= timedelta(minutes=5)
    mod(room, chair, ModAction.UNMUTE, member.handle)
    assert active_mute(author_key=f"u:{member.pk}", room=room) is None
    entry = AuditEntry.objects.filter(action="mute").get()
    assert (entry.actor_handle, entry.target_handle, entry.reason, entry.room) == (
        "Meena Lamp",
        "Noisy One",
        "test",
        room,
    )


def test_a_handle_matches_its_look_alikes(scene):
    room, chair, member, _ = scene
    mod(room, chair, ModAction.MUTE, "noisy  one")
    assert active_mute(author_key=f"u:{member.pk}", room=room) is not None


def test_remove_keeps_them_out_of_this_room_only(scene):
    room, chair, member, _ = scene
    mod(room, chair, ModAction.REMOVE, member.handle)
    assert barring_restriction(author_key=f"u:{member.pk}", room=room) is not None
    assert barring_restriction(author_key=f"u:{member.pk}", room=make_room()) is None


def test_ban_covers_the_fellowship_and_only_a_moderator_may(scene):
    room, chair, member, moderator = scene
    with pytest.raises(ProtocolError) as refused:
        mod(room, chair, ModAction.BAN, member.handle)
    assert refused.value.code == "not_allowed"
    mod(room, moderator, ModAction.BAN, member.handle)
    other_na = make_room(programme=Programme.NA)
    assert barring_restriction(author_key=f"u:{member.pk}", room=other_na) is not None
    assert barring_restriction(author_key=f"u:{member.pk}", room=make_room(programme=Programme.AA)) is None


def test_delete_hold_and_release_a_message(scene):
    room, chair, member, _ = scene
    message = post(room, member, "something unkind")
    mod(room, chair, ModAction.HOLD, message.seq)
    assert Message.objects.get(pk=message.pk).state == Message.State.HELD
    mod(room, chair, ModAction.RELEASE, message.seq)
    assert Message.objects.get(pk=message.pk).state == Message.State.VISIBLE
    mod(room, chair, ModAction.DELETE, message.seq)
    assert Message.objects.get(pk=message.pk).state == Message.State.DELETED
    with pytest.raises(ProtocolError) as gone:
        mod(room, chair, ModAction.DELETE, message.seq)
    assert gone.value.code == "not_found"
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == ["hold", "release", "delete"]


def test_slow_mode_and_lock_change_the_room(scene):
    room, chair, _, _ = scene
    mod(room, chair, ModAction.SLOW, seconds=30)
    mod(room, chair, ModAction.LOCK)
    room = Room.objects.get(pk=room.pk)
    assert room.slow_mode_seconds == 30 and room.locked
    mod(room, chair, ModAction.SLOW)
    mod(room, chair, ModAction.UNLOCK)
    room = Room.objects.get(pk=room.pk)
    assert room.slow_mode_seconds == 0 and not room.locked


@pytest.mark.parametrize("action", [a for a in ModAction if a != ModAction.NEXT])
def test_members_and_chairs_of_other_rooms_may_not_moderate(scene, action):
    room, _, member, _ = scene
    target = make_user(handle="Some Body")
    message = post(room, target, "hello")
    other_rooms_chair = make_user()
    make_room().chairs.add(other_rooms_chair)
    for actor in (member, other_rooms_chair):
        with pytest.raises(ProtocolError) as refused:
            mod(room, actor, action, message.seq if action in ("delete", "hold", "release") else target.handle)
        assert refused.value.code == "not_allowed"
    assert not Restriction.objects.exists() and not AuditEntry.objects.exists()


def test_moderators_act_in_every_room_and_staff_cannot_be_muted(scene):
    _, _, member, moderator = scene
    anywhere = make_room()
    mod(anywhere, moderator, ModAction.MUTE, member.handle)
    counsellor = make_user(roles=(Role.COUNSELLOR.value,))
    with pytest.raises(ProtocolError):
        mod(anywhere, moderator, ModAction.MUTE, counsellor.handle)


def test_a_report_reaches_the_queue_once_and_never_names_the_reporter(scene):
    room, _, member, _ = scene
    reporter = make_user(handle="Kind Soul")
    message = post(room, member, "something unkind")
    services.check_report(room=room, reporter=who(reporter), message_id=message.seq, reason="rude")
    services.check_report(room=room, reporter=who(reporter), message_id=message.seq, reason="rude again")
    report = Report.objects.get()
    frame = services.report_frame(report)
    assert frame["handle"] == "Noisy One" and frame["reason"] == "rude" and "Kind Soul" not in str(frame)
    with pytest.raises(ProtocolError):
        services.check_report(room=room, reporter=who(reporter), message_id=999, reason="")
