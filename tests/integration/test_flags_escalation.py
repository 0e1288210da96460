"""Escalation and the counsellor's path: acknowledge, a private room, a hand-off note, an outcome."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, connections
from django.utils import timezone

from accounts.models import Role
from chat.protocol import ProtocolError
from moderation import services
from moderation.models import AuditEntry, Flag
from rooms.services import check_room_access
from tests.factories import make_room, make_user
from tests.integration.test_moderation_helpers import counsellor, post, rota, who

CRISIS = "I want to kill myself tonight, I have the pills ready"


def raise_flag(now):  # type: ignore[no-untyped-def]
    primary, backup, supervisor = counsellor("Kabir C"), counsellor("Leela B"), counsellor("Meher S")
    rota(now, primary=primary, backup=backup, supervisor=supervisor)
    member = make_user(handle="Asha Rain")
    post(make_room(), member, CRISIS)
    return Flag.objects.get(), member, (primary, backup, supervisor)


@pytest.mark.django_db
def test_an_unacknowledged_flag_escalates_backup_then_supervisor_then_email_and_webhook(
    settings, django_capture_on_commit_callbacks
):
    settings.SAATHI_CRISIS_EMAILS = ["desk@example.org"]
    settings.SAATHI_CRISIS_WEBHOOK_URL = "http://127.0.0.1:9/unreachable"  # a failed webhook is recorded, not fatal
    flag, _, _ = raise_flag(timezone.now())
    assert services.escalate_due_flags(now=flag.deadline - timedelta(seconds=1)) == 0  # not yet
    seen = []
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            flag.refresh_from_db()
            assert services.escalate_due_flags(now=flag.deadline + timedelta(seconds=1)) == 1
            flag.refresh_from_db()
            seen.append(flag.get_step_display())
    assert seen == ["Backup counsellor", "Supervisor", "Email and webhook"]
    assert services.escalate_due_flags(now=flag.deadline + timedelta(hours=1)) == 0  # nothing after the last step
    assert len(mail.outbox) == 1
    escalations = AuditEntry.objects.filter(flag=flag, action="flag_escalated").order_by("id")
    assert [e.detail["to"] for e in escalations] == seen
    sent = AuditEntry.objects.get(flag=flag, action="out_of_band_sent")
    assert sent.detail == {"email": "sent to 1", "webhook": "failed"}


@pytest.mark.django_db
def test_the_worker_step_is_idempotent_for_one_moment():
    flag, _, _ = raise_flag(timezone.now())
    moment = flag.deadline + timedelta(seconds=1)
    assert services.escalate_due_flags(now=moment) == 1
    assert services.escalate_due_flags(now=moment) == 0
    flag.refresh_from_db()
    assert flag.step == Flag.Step.BACKUP


@pytest.mark.django_db
def test_an_acknowledged_flag_stops_escalating_and_shows_who_has_it():
    flag, _, (primary, _, _) = raise_flag(timezone.now())
    services.do_acknowledge_flag(flag_id=flag.pk, actor=who(primary))
    assert services.escalate_due_flags(now=flag.deadline + timedelta(hours=1)) == 0
    flag.refresh_from_db()
    assert flag.state == Flag.State.ACKNOWLEDGED and services.flag_frame(flag)["owner"] == "Kabir C"


@pytest.mark.django_db
def test_a_counsellor_opens_a_private_room_only_the_member_and_they_can_enter_then_resolves():
    flag, member, (primary, backup, _) = raise_flag(timezone.now())
    room = services.do_open_private_room(flag_id=flag.pk, actor=who(primary))
    assert "Kabir C" in room.name and "counsellor" in room.name  # the member sees who and in what role
    assert check_room_access(room, who(member)).allowed
    assert check_room_access(room, who(primary)).allowed
    assert not check_room_access(room, who(make_user())).allowed
    assert not check_room_access(room, who(backup)).allowed  # other staff stay out of a private conversation
    services.do_add_handoff_note(flag_id=flag.pk, actor=who(primary), note="Talked; she is with her sister now.")
    services.do_resolve_flag(flag_id=flag.pk, actor=who(primary), outcome="supported", note="Follow up tomorrow.")
    flag.refresh_from_db()
    assert flag.state == Flag.State.RESOLVED and flag.outcome == "supported"
    assert "with her sister" in flag.handoff_note and "Follow up tomorrow." in flag.handoff_note
    actions = list(AuditEntry.objects.filter(flag=flag).order_by("id").values_list("action", flat=True))
    assert actions == ["flag_raised", "flag_acknowledged", "private_room_opened", "handoff_note", "flag_resolved"]


@pytest.mark.django_db
@pytest.mark.parametrize("role", [None, Role.MODERATOR.value, Role.CHAIR.value])
def test_only_counsellors_can_acknowledge_or_resolve(role):
    flag, _, _ = raise_flag(timezone.now())
    someone = make_user(roles=(role,) if role else ())
    with pytest.raises(ProtocolError) as refused:
        services.do_acknowledge_flag(flag_id=flag.pk, actor=who(someone))
    assert refused.value.code == "not_allowed"
    with pytest.raises(ProtocolError):
        services.do_resolve_flag(flag_id=flag.pk, actor=who(someone), outcome="supported")


@pytest.mark.django_db
def test_resolving_needs_a_known_outcome():
    flag, _, (primary, _, _) = raise_flag(timezone.now())
    with pytest.raises(ProtocolError) as refused:
        services.do_resolve_flag(flag_id=flag.pk, actor=who(primary), outcome="whatever")
    assert refused.value.code == "invalid"


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_escalate_a_flag_once():
    if connection.vendor != "postgresql":
        pytest.skip("row locks (select_for_update skip_locked) only hold on PostgreSQL")
    flag, _, _ = raise_flag(timezone.now())
    moment = flag.deadline + timedelta(seconds=1)
    barrier, done = threading.Barrier(4), []

    def worker() -> None:
        try:
            barrier.wait()
            done.append(services.escalate_due_flags(now=moment))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(done) == 1
    assert AuditEntry.objects.filter(flag=flag, action="flag_escalated").count() == 1


@pytest.mark.django_db
def test_the_demo_rota_puts_someone_on_call_in_each_position_and_seeding_twice_adds_nothing():
    from moderation.models import RotaShift
    from moderation.rota import seed_demo_rota

    created = seed_demo_rota(days=2)
    assert len(created) == 3 and all("password" in line for line in created)
    shifts = RotaShift.objects.count()
    assert seed_demo_rota(days=2) == [] and RotaShift.objects.count() == shifts == 6
    positions = {s.position for s in services.on_call(now=timezone.now())}
    assert positions == {"primary", "backup", "supervisor"}
