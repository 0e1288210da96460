"""What moderation does: crisis flags and their escalation, the on-call rota, moderation actions, reports.

Every state change is a `do_…` function (synchronous, atomic, keyword-only); the checks that can refuse are
`check_…` functions that raise `ProtocolError` with a sentence a person can read. Frames go out only after
commit, through chat/broadcast.py. Staff are told a handle, the message and its room: never an account.
"""

from __future__ import annotations

import json
import logging
import secrets
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from accounts.handles import skeleton
from accounts.identity import Participant
from accounts.models import GuestPass, Role, User
from chat import broadcast, protocol
from chat.failures import log_failure
from chat.frames import message_frame
from chat.models import Message
from chat.protocol import ErrorCode, ModAction, ModRequest, NoticeCode, ProtocolError
from moderation.models import LEVEL_RANK, AuditEntry, Flag, Level, PrivateRoomInvite, Report, Restriction, RotaShift
from moderation.scanning import Assessment
from moderation.scanning import scan as scan_text
from rooms.models import Access, Retention, Room
from rooms.services import RoomSwitches, chairs_room

logger = logging.getLogger("saathi.moderation")

SYSTEM_KEY = "system"
SYSTEM_HANDLE = "Saathi"
EXCERPT_CHARS = 280
DEFAULT_MUTE_MINUTES = 10
DEFAULT_REMOVE_MINUTES = 24 * 60

# Permissions (moderation app); groups get them in migration 0003. Check these, not group names.
PERM_VIEW_FLAGS = "moderation.view_flag"
PERM_HANDLE_FLAGS = "moderation.handle_flag"
PERM_VIEW_REPORTS = "moderation.view_report"
PERM_CHANGE_REPORTS = "moderation.change_report"
PERM_VIEW_AUDIT = "moderation.view_auditentry"
PERM_MODERATE = "moderation.moderate_rooms"

_STEP_POSITION = {
    Flag.Step.PRIMARY: RotaShift.Position.PRIMARY,
    Flag.Step.BACKUP: RotaShift.Position.BACKUP,
    Flag.Step.SUPERVISOR: RotaShift.Position.SUPERVISOR,
}


# --- Who may do what -----------------------------------------------------------------------------------


def user_of(participant: Participant | None) -> User | None:
    if participant is None or participant.user_id is None:
        return None
    return User.objects.filter(pk=participant.user_id, is_active=True).first()


def has_perm(participant: Participant | None, perm: str) -> bool:
    """Return whether this person may use a moderation permission now (guests hold none).

    The account must hold the permission, and this session must be acting as staff: a staff account that
    hasn't passed its second factor is a member (accounts.services.participant_for drops its staff roles).
    """
    if participant is None or not participant.is_staff_role:
        return False
    user = user_of(participant)
    return user is not None and user.has_perm(perm)


@dataclass(frozen=True, slots=True)
class StaffAccess:
    """What one staff member may see and do on the moderation channel and pages."""

    participant: Participant
    flags: bool
    handle_flags: bool
    reports: bool
    audit: bool
    moderate: bool

    @property
    def audiences(self) -> frozenset[str]:
        return frozenset(
            perm for perm, held in ((PERM_VIEW_FLAGS, self.flags), (PERM_VIEW_REPORTS, self.reports)) if held
        )


def staff_access(participant: Participant | None) -> StaffAccess | None:
    """Return what this person may see of the moderation queue, or None for members and guests."""
    user = user_of(participant)
    if participant is None or user is None or not participant.is_staff_role:
        return None  # members, guests, and staff who haven't passed the second factor yet
    access = StaffAccess(
        participant=participant,
        flags=user.has_perm(PERM_VIEW_FLAGS),
        handle_flags=user.has_perm(PERM_HANDLE_FLAGS),
        reports=user.has_perm(PERM_VIEW_REPORTS),
        audit=user.has_perm(PERM_VIEW_AUDIT),
        moderate=user.has_perm(PERM_MODERATE),
    )
    if not (access.flags or access.reports or access.audit):
        return None
    return access


def can_moderate_room(room: Room, participant: Participant) -> bool:
    """Moderators act in every room; a chair only in the rooms they chair."""
    return has_perm(participant, PERM_MODERATE) or chairs_room(room, participant)


# --- The audit log -------------------------------------------------------------------------------------


def _audit(
    *,
    actor: Participant | None,
    action: str,
    room: Room | None = None,
    target_key: str = "",
    target_handle: str = "",
    reason: str = "",
    detail: dict[str, Any] | None = None,
    flag: Flag | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        actor_key=actor.author_key if actor else SYSTEM_KEY,
        actor_handle=actor.handle if actor else SYSTEM_HANDLE,
        action=action,
        room=room,
        target_key=target_key,
        target_handle=target_handle,
        reason=reason[:500],
        detail=detail or {},
        flag=flag,
    )


def audit_row(entry: AuditEntry) -> dict[str, Any]:
    """Return an audit entry as staff read it: handles, never account keys."""
    return {
        "id": entry.pk,
        "at": _iso(entry.created_at),
        "who": entry.actor_handle,
        "action": entry.action,
        "room": entry.room.name if entry.room_id and entry.room else "",
        "target": entry.target_handle,
        "why": entry.reason,
        "detail": entry.detail,
        "flag": entry.flag_id,
    }


# --- The on-call rota ---------------------------------------------------------------------------------


def on_call(*, now: datetime, position: str | None = None) -> list[RotaShift]:
    """Return the shifts running at `now` (optionally in one position), primary first."""
    shifts = RotaShift.objects.filter(starts_at__lte=now, ends_at__gt=now, user__is_active=True).select_related("user")
    if position is not None:
        shifts = shifts.filter(position=position)
    order = {RotaShift.Position.PRIMARY: 0, RotaShift.Position.BACKUP: 1, RotaShift.Position.SUPERVISOR: 2}
    return sorted(shifts, key=lambda s: (order.get(s.position, 9), s.starts_at))  # type: ignore[call-overload]


def _on_call_keys(position: str, now: datetime) -> list[str]:
    return sorted({f"u:{shift.user_id}" for shift in on_call(now=now, position=position)})


@transaction.atomic
def do_add_shift(
    *, user: User, position: str, starts: datetime, ends: datetime, time_zone: str = "Asia/Kolkata"
) -> RotaShift:
    """Put someone on the rota. Naive `starts`/`ends` are wall times in `time_zone`."""
    zone = ZoneInfo(time_zone)
    if timezone.is_naive(starts):
        starts = starts.replace(tzinfo=zone)
    if timezone.is_naive(ends):
        ends = ends.replace(tzinfo=zone)
    if ends <= starts:
        raise ValueError("A shift must end after it starts.")
    if position not in RotaShift.Position.values:
        raise ValueError(f"Unknown rota position {position!r}.")
    return RotaShift.objects.create(user=user, position=position, starts_at=starts, ends_at=ends, time_zone=time_zone)


# --- The crisis path ----------------------------------------------------------------------------------


def assess(body: str) -> Assessment:
    """Assess a message for crisis language: the detector's one caller."""
    return scan_text(body)


def initial_state(room: Room | RoomSwitches, assessment: Assessment) -> str:
    """Return the state a new message is stored in: held only in rooms that hold `imminent` messages."""
    if room.hold_imminent and assessment.level.value == Level.IMMINENT:
        return Message.State.HELD
    return Message.State.VISIBLE


def deadline_for(level: str) -> timedelta:
    return timedelta(seconds=settings.SAATHI_FLAG_DEADLINE_SECONDS[level])


def support_frame(*, counsellor_notified: bool) -> dict[str, Any]:
    """Return the private `support` frame for a member whose message raised a flag."""
    text = (
        "Thank you for sharing that. It sounds really hard right now, and you don't have to face it alone. "
        "If you might be in danger, please call one of these numbers now: they answer, and they are free."
    )
    if counsellor_notified:
        text += " A counsellor on our team has also been told, and may reach out to you here."
    return {
        "type": protocol.ServerType.SUPPORT.value,
        "text": text,
        "helplines": [
            {"name": h["name"], "number": h["number"], "hours": h.get("hours", "")} for h in settings.SAATHI_HELPLINES
        ],
        "counsellor_notified": counsellor_notified,
        "replies": [
            {"wants_to_talk": False, "label": "I'm OK"},
            {"wants_to_talk": True, "label": "I'd like to talk to someone"},
        ],
    }


@transaction.atomic
def do_handle_assessment(
    *, message: Message, participant: Participant, assessment: Assessment, now: datetime | None = None
) -> Flag | None:
    """Raise (or upgrade) a flag for a stored message the detector rated; tell the member privately."""
    if assessment.level.value not in Level.values:
        return None
    return _raise_or_upgrade(
        room=message.room,
        author_key=participant.author_key,
        handle=participant.handle,
        level=assessment.level.value,
        categories=list(assessment.categories),
        message=message,
        source=Flag.Source.DETECTOR,
        now=now or timezone.now(),
        tell_member=True,
    )


@transaction.atomic
def do_support_reply(
    *, room: Room, participant: Participant, wants_to_talk: bool, now: datetime | None = None
) -> dict[str, Any]:
    """Record a member's answer to a `support` frame; "I'd like to talk" raises or upgrades a flag."""
    now = now or timezone.now()
    if wants_to_talk:
        flag = _raise_or_upgrade(
            room=room,
            author_key=participant.author_key,
            handle=participant.handle,
            level=Level.HIGH,
            categories=[],
            message=None,
            source=Flag.Source.MEMBER,
            now=now,
            tell_member=False,
        )
        _audit(actor=participant, action="member_asked_to_talk", room=room, target_handle=participant.handle, flag=flag)
        notified = bool(_on_call_keys(_STEP_POSITION[Flag.Step(flag.step)], now)) if flag.step < 3 else False
        text = (
            "Thank you for telling us. A counsellor has been asked to reach out to you here"
            + (" soon." if notified else " as soon as someone is free.")
            + " If you might be in danger right now, please call one of the helplines."
        )
        return protocol.notice_frame(NoticeCode.SUPPORT_THANKS, text)
    flag = _open_flag_for(room=room, author_key=participant.author_key, lock=True)
    if flag is not None and not flag.member_said_ok:
        flag.member_said_ok = True
        flag.save(update_fields=["member_said_ok"])
        _audit(actor=participant, action="member_said_ok", room=room, target_handle=participant.handle, flag=flag)
        _publish_flag(flag, change="member_said_ok")
    return protocol.notice_frame(
        NoticeCode.SUPPORT_THANKS,
        "Thank you for letting us know. The helplines are there any time, day or night, if you need them.",
    )


def _open_flag_for(*, room: Room, author_key: str, lock: bool) -> Flag | None:
    flags = Flag.objects.filter(room=room, author_key=author_key).exclude(state=Flag.State.RESOLVED)
    if lock:
        flags = flags.select_for_update()
    return flags.order_by("-raised_at").first()


def _raise_or_upgrade(
    *,
    room: Room,
    author_key: str,
    handle: str,
    level: str,
    categories: list[str],
    message: Message | None,
    source: str,
    now: datetime,
    tell_member: bool,
) -> Flag:
    """One open flag per member and room: a new crisis message or request upgrades it instead of piling up."""
    wants = source == Flag.Source.MEMBER
    flag = _open_flag_for(room=room, author_key=author_key, lock=True)
    if flag is None:
        paged = _on_call_keys(RotaShift.Position.PRIMARY, now)
        flag = Flag.objects.create(
            room=room,
            message=message,
            author_key=author_key,
            handle=handle,
            level=level,
            categories=sorted(set(categories)),
            source=source,
            wants_to_talk=wants,
            raised_at=now,
            # Nobody on call: the worker escalates on its next round instead of waiting out the deadline.
            deadline=now + deadline_for(level) if paged else now,
        )
        _audit(
            actor=None,
            action="flag_raised",
            room=room,
            target_handle=handle,
            detail={"level": level, "categories": flag.categories, "source": source, "paged": len(paged)},
            flag=flag,
        )
        if not paged:
            _audit(actor=None, action="nobody_on_call", room=room, detail={"step": "primary"}, flag=flag)
        _publish_flag(flag, change="raised", paged=paged, frame_type=protocol.ServerType.FLAG)
        if tell_member:
            broadcast.publish_to_author_on_commit(
                author_key=author_key, frame=support_frame(counsellor_notified=bool(paged)), room=room.slug
            )
        return flag
    upgraded = LEVEL_RANK[Level(level)] > flag.rank
    changed = sorted(set(flag.categories) | set(categories)) != flag.categories or (wants and not flag.wants_to_talk)
    flag.categories = sorted(set(flag.categories) | set(categories))
    flag.wants_to_talk = flag.wants_to_talk or wants
    if upgraded:
        flag.level = level
        if message is not None:
            flag.message = message
        if flag.state == Flag.State.OPEN:
            flag.deadline = min(flag.deadline, now + deadline_for(level))
    if upgraded or changed:
        flag.member_said_ok = flag.member_said_ok and not wants
        flag.save()
        _audit(
            actor=None,
            action="flag_upgraded" if upgraded else "flag_updated",
            room=room,
            target_handle=handle,
            detail={"level": flag.level, "categories": flag.categories, "source": source},
            flag=flag,
        )
        paged = _paged_now(flag, now)
        _publish_flag(flag, change="upgraded" if upgraded else "updated", paged=paged if upgraded or wants else [])
        if tell_member and upgraded:
            broadcast.publish_to_author_on_commit(
                author_key=author_key, frame=support_frame(counsellor_notified=bool(paged)), room=room.slug
            )
    return flag


def _paged_now(flag: Flag, now: datetime) -> list[str]:
    """Return who is paged for a flag at its current step (its owner, once someone has it)."""
    if flag.state == Flag.State.ACKNOWLEDGED and flag.owner_key:
        return [flag.owner_key]
    position = _STEP_POSITION.get(Flag.Step(flag.step))
    return _on_call_keys(position, now) if position else []


def flag_context(flag: Flag, *, after: bool = True) -> list[dict[str, Any]]:
    """Return the flagged message with a few messages either side: handle, text and id, nothing else."""
    n = settings.SAATHI_FLAG_CONTEXT_MESSAGES
    messages = Message.objects.filter(room_id=flag.room_id).exclude(state=Message.State.DELETED)
    if flag.message_id is not None and flag.message is not None:
        seq = flag.message.seq
        rows = [*list(messages.filter(seq__lt=seq).order_by("-seq")[:n])[::-1], flag.message]
        if after:
            rows += list(messages.filter(seq__gt=seq).order_by("seq")[:n])
    else:
        rows = list(messages.filter(created_at__lte=flag.raised_at).order_by("-seq")[:n])[::-1]
    return [
        {
            "id": m.seq,
            "handle": m.handle,
            "body": m.body,
            "sent_at": _iso(m.created_at),
            "flagged": m.pk == flag.message_id,
            "held": m.state == Message.State.HELD,
        }
        for m in rows
    ]


def flag_frame(flag: Flag, *, frame_type: str = protocol.ServerType.FLAG, change: str = "") -> dict[str, Any]:
    """Return a flag as staff see it: the handle, the message, the room. No account, no username, no email."""
    body = flag.message.body if flag.message_id is not None and flag.message is not None else ""
    frame: dict[str, Any] = {
        "type": str(frame_type),
        "id": flag.pk,
        "room": flag.room.slug,
        "room_name": flag.room.name,
        "handle": flag.handle,
        "excerpt": body[:EXCERPT_CHARS] + ("…" if len(body) > EXCERPT_CHARS else ""),
        "message_id": flag.message.seq if flag.message_id is not None and flag.message is not None else None,
        "level": flag.level,
        "categories": list(flag.categories),
        "source": flag.source,
        "wants_to_talk": flag.wants_to_talk,
        "member_said_ok": flag.member_said_ok,
        "raised_at": _iso(flag.raised_at),
        "deadline": _iso(flag.deadline),
        "state": flag.state,
        "step": Flag.Step(flag.step).label,
        "owner": flag.owner_handle or None,
        "private_room": reverse("rooms:room", args=[flag.private_room.slug]) if flag.private_room else None,
        "outcome": flag.outcome or None,
        "context": flag_context(flag, after=False),
    }
    if change:
        frame["change"] = change
    return frame


def _publish_flag(
    flag: Flag, *, change: str, paged: list[str] | None = None, frame_type: str = protocol.ServerType.FLAG_UPDATE
) -> None:
    broadcast.publish_moderation_on_commit(
        frame=flag_frame(flag, frame_type=frame_type, change=change), audience=PERM_VIEW_FLAGS, paged=paged
    )


def escalate_due_flags(*, now: datetime) -> int:
    """Escalate every unacknowledged flag past its deadline by one step. A locked, idempotent worker step."""
    with transaction.atomic():
        due = list(
            Flag.objects.select_for_update(skip_locked=True)
            .filter(state=Flag.State.OPEN, deadline__lte=now, step__lt=Flag.Step.OUT_OF_BAND)
            .order_by("deadline")[:50]
        )
        for flag in due:
            _escalate(flag, now=now)
    return len(due)


def _escalate(flag: Flag, *, now: datetime) -> None:
    step = flag.step
    paged: list[str] = []
    while step < Flag.Step.OUT_OF_BAND:
        step += 1
        position = _STEP_POSITION.get(Flag.Step(step))
        if position is None:
            break
        paged = _on_call_keys(position, now)
        if paged:
            break
        _audit(actor=None, action="nobody_on_call", room=flag.room, detail={"step": position}, flag=flag)
    flag.step = step
    flag.deadline = now + deadline_for(flag.level)
    flag.save(update_fields=["step", "deadline"])
    label = Flag.Step(step).label
    _audit(
        actor=None,
        action="flag_escalated",
        room=flag.room,
        target_handle=flag.handle,
        reason="Not acknowledged in time.",
        detail={"to": label, "paged": len(paged)},
        flag=flag,
    )
    if step == Flag.Step.OUT_OF_BAND:
        flag_id = flag.pk
        transaction.on_commit(lambda: _notify_out_of_band(flag_id))
    _publish_flag(flag, change="escalated", paged=paged)


def _notify_out_of_band(flag_id: int) -> None:
    """Email and (optionally) POST to a webhook. Neither carries the message or the handle: only a link."""
    flag = Flag.objects.select_related("room").get(pk=flag_id)
    link = settings.SAATHI_SITE_URL.rstrip("/") + reverse("moderation:flag", args=[flag.pk])
    summary = f"Saathi: an unacknowledged {flag.level} crisis flag (#{flag.pk}) in {flag.room.name}"
    results: dict[str, Any] = {}
    recipients = list(settings.SAATHI_CRISIS_EMAILS) + [
        shift.user.email for shift in on_call(now=timezone.now()) if shift.user.email
    ]
    if recipients:
        try:
            send_mail(
                summary,
                f"{summary} has not been acknowledged by the on-call counsellors.\n\nOpen it: {link}\n",
                settings.DEFAULT_FROM_EMAIL,
                sorted(set(recipients)),
            )
            results["email"] = f"sent to {len(set(recipients))}"
        except Exception as exc:
            log_failure(logger, "crisis email", exc)
            results["email"] = "failed"
    url = settings.SAATHI_CRISIS_WEBHOOK_URL
    if url.startswith(("https://", "http://")):
        payload = {"flag": flag.pk, "level": flag.level, "room": flag.room.slug, "raised_at": _iso(flag.raised_at)}
        request = urllib.request.Request(  # noqa: S310  (scheme checked above)
            url, data=json.dumps({**payload, "url": link}).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310  # nosec B310: http(s) only, checked above
                results["webhook"] = f"HTTP {response.status}"
        except Exception as exc:
            log_failure(logger, "crisis webhook", exc)
            results["webhook"] = "failed"
    if not results:
        results["warning"] = "no email address or webhook is configured"
    _audit(actor=None, action="out_of_band_sent", room=flag.room, detail=results, flag=flag)


def _flag_for_staff(*, flag_id: int, actor: Participant, perm: str = PERM_HANDLE_FLAGS) -> Flag:
    if not has_perm(actor, perm):
        raise ProtocolError(ErrorCode.NOT_ALLOWED, "Only counsellors on the crisis team can do that.")
    # of=("self",): the message is a nullable join, and PostgreSQL won't lock the nullable side of one.
    flag = Flag.objects.select_for_update(of=("self",)).select_related("room", "message").filter(pk=flag_id).first()
    if flag is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "There is no such flag.")
    return flag


@transaction.atomic
def do_acknowledge_flag(*, flag_id: int, actor: Participant, now: datetime | None = None) -> Flag:
    """Take a flag: escalation stops, and the other staff see who has it."""
    flag = _flag_for_staff(flag_id=flag_id, actor=actor)
    if flag.state == Flag.State.RESOLVED:
        raise ProtocolError(ErrorCode.INVALID, "That flag is already resolved.")
    if flag.state == Flag.State.ACKNOWLEDGED:
        return flag  # acknowledging twice (or two counsellors at once) changes nothing
    flag.state = Flag.State.ACKNOWLEDGED
    flag.acknowledged_at = now or timezone.now()
    flag.owner_key, flag.owner_handle = actor.author_key, actor.handle
    flag.save(update_fields=["state", "acknowledged_at", "owner_key", "owner_handle"])
    _audit(actor=actor, action="flag_acknowledged", room=flag.room, target_handle=flag.handle, flag=flag)
    _publish_flag(flag, change="acknowledged")
    return flag


@transaction.atomic
def do_open_private_room(*, flag_id: int, actor: Participant, now: datetime | None = None) -> Room:
    """Open a private room for the counsellor and the flagged member, and invite the member to it."""
    flag = _flag_for_staff(flag_id=flag_id, actor=actor)
    if flag.private_room_id is not None and flag.private_room is not None:
        return flag.private_room
    if flag.state == Flag.State.OPEN:  # opening a room is taking the flag
        flag.state = Flag.State.ACKNOWLEDGED
        flag.acknowledged_at = now or timezone.now()
        flag.owner_key, flag.owner_handle = actor.author_key, actor.handle
        _audit(actor=actor, action="flag_acknowledged", room=flag.room, target_handle=flag.handle, flag=flag)
    room = Room.objects.create(
        slug=f"support-{secrets.token_hex(6)}",
        name=f"Private support with {actor.handle} (counsellor)",
        access=Access.PRIVATE,
        retention_hours=Retention.DAY,
        description="A private conversation with a counsellor. Only the two of you can see it.",
    )
    user = user_of(actor)
    if user is not None:
        room.chairs.add(user)
    PrivateRoomInvite.objects.create(room=room, member_key=flag.author_key, flag=flag)
    flag.private_room = room
    flag.save()
    _audit(actor=actor, action="private_room_opened", room=flag.room, target_handle=flag.handle, flag=flag)
    _publish_flag(flag, change="room_opened")
    url = reverse("rooms:room", args=[room.slug])
    broadcast.publish_to_author_on_commit(
        author_key=flag.author_key,
        frame=protocol.notice_frame(
            NoticeCode.COUNSELLOR_ROOM,
            f"{actor.handle} (counsellor) would like to talk with you privately. Only the two of you can see it.",
            url=url,
            counsellor={"handle": actor.handle, "role": Role.COUNSELLOR.value},
        ),
    )
    return room


@transaction.atomic
def do_add_handoff_note(*, flag_id: int, actor: Participant, note: str, now: datetime | None = None) -> Flag:
    """Add to a flag's hand-off note, for whoever picks it up next."""
    flag = _flag_for_staff(flag_id=flag_id, actor=actor)
    note = note.strip()
    if not note:
        raise ProtocolError(ErrorCode.INVALID, "The note is empty.")
    stamp = timezone.localtime(now or timezone.now()).strftime("%Y-%m-%d %H:%M")
    flag.handoff_note = (flag.handoff_note + "\n\n" if flag.handoff_note else "") + f"[{stamp} {actor.handle}] {note}"
    flag.save(update_fields=["handoff_note"])
    _audit(actor=actor, action="handoff_note", room=flag.room, target_handle=flag.handle, flag=flag)
    _publish_flag(flag, change="note")
    return flag


@transaction.atomic
def do_resolve_flag(
    *, flag_id: int, actor: Participant, outcome: str, note: str = "", now: datetime | None = None
) -> Flag:
    """Close a flag with its outcome (and a last hand-off note)."""
    if outcome not in Flag.Outcome.values:
        choices = ", ".join(Flag.Outcome.values)
        raise ProtocolError(ErrorCode.INVALID, f"Choose an outcome: {choices}.")
    flag = _flag_for_staff(flag_id=flag_id, actor=actor)
    if flag.state == Flag.State.RESOLVED:
        return flag
    now = now or timezone.now()
    if note.strip():
        stamp = timezone.localtime(now).strftime("%Y-%m-%d %H:%M")
        flag.handoff_note = (
            flag.handoff_note + "\n\n" if flag.handoff_note else ""
        ) + f"[{stamp} {actor.handle}] {note}"
    flag.state, flag.outcome, flag.resolved_at = Flag.State.RESOLVED, outcome, now
    if not flag.owner_key:
        flag.owner_key, flag.owner_handle = actor.author_key, actor.handle
    flag.save()
    _audit(
        actor=actor,
        action="flag_resolved",
        room=flag.room,
        target_handle=flag.handle,
        reason=Flag.Outcome(outcome).label,
        detail={"outcome": outcome},
        flag=flag,
    )
    _publish_flag(flag, change="resolved")
    return flag


def check_flag_request(*, request: protocol.FlagRequest, actor: Participant) -> Flag | Room:
    """Serve one `ack`, `resolve`, `note` or `open_room` frame from the moderation channel."""
    kind = protocol.ModerationClientType
    if request.kind == kind.ACK:
        return do_acknowledge_flag(flag_id=request.flag_id, actor=actor)
    if request.kind == kind.RESOLVE:
        return do_resolve_flag(flag_id=request.flag_id, actor=actor, outcome=request.outcome, note=request.note)
    if request.kind == kind.NOTE:
        return do_add_handoff_note(flag_id=request.flag_id, actor=actor, note=request.note)
    return do_open_private_room(flag_id=request.flag_id, actor=actor)


def live_flags() -> list[Flag]:
    """Return unresolved flags, most urgent first (level, then deadline)."""
    flags = list(Flag.objects.exclude(state=Flag.State.RESOLVED).select_related("room", "message", "private_room"))
    return sorted(flags, key=lambda f: (-f.rank, f.state != Flag.State.OPEN, f.deadline))


# --- Moderation actions (`mod` frames) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    author_key: str
    handle: str


def _target_person(room: Room, actor: Participant, text: str) -> Target:
    """Find a person by handle (look-alike handles match too). Staff can't be acted on, nor can you."""
    key = skeleton(" ".join(text.split()))
    user = User.objects.filter(handle_key=key).first()
    guest = None if user else GuestPass.objects.filter(handle_key=key).first()
    if user is None and guest is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "Nobody has that handle.")
    target = Target(author_key=f"u:{user.pk}", handle=user.handle) if user else Target(f"g:{guest.pk}", guest.handle)  # type: ignore[union-attr]
    if target.author_key == actor.author_key:
        raise ProtocolError(ErrorCode.INVALID, "You can't do that to yourself.")
    if user is not None and (user.is_superuser or user.groups.filter(name__in=[r.value for r in _STAFF]).exists()):
        raise ProtocolError(ErrorCode.NOT_ALLOWED, "Staff can't be muted, removed or banned here.")
    return target


_STAFF = (Role.MODERATOR, Role.COUNSELLOR, Role.ADMIN)


def _target_message(room: Room, text: str) -> Message:
    try:
        seq = int(text)
    except ValueError:
        raise ProtocolError(ErrorCode.INVALID, "`target` must be a message id for that action.") from None
    message = Message.objects.select_for_update().filter(room=room, seq=seq).first()
    if message is None or message.state == Message.State.DELETED:
        raise ProtocolError(ErrorCode.NOT_FOUND, "There is no such message.")
    return message


def _notice_room(room: Room, code: NoticeCode, text: str) -> None:
    broadcast.publish_room_frame_on_commit(
        slug=room.slug, seq=None, text=protocol.encode(protocol.notice_frame(code, text))
    )


def _done(text: str) -> list[dict[str, Any]]:
    return [protocol.notice_frame(NoticeCode.MOD_DONE, text)]


@transaction.atomic
def check_mod_action(
    *, room: Room, actor: Participant, request: ModRequest, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Apply a chair's or moderator's `mod` frame; return the frames for the one who acted."""
    now = now or timezone.now()
    if not can_moderate_room(room, actor):
        raise ProtocolError(ErrorCode.NOT_ALLOWED, "Only this meeting's chair or a moderator can do that.")
    action, reason = request.action, request.reason
    if action == ModAction.MUTE:
        target = _target_person(room, actor, request.target)
        minutes = request.minutes or DEFAULT_MUTE_MINUTES
        do_mute(room=room, actor=actor, target=target, minutes=minutes, reason=reason, now=now)
        return _done(f"{target.handle} is muted for {minutes} minutes.")
    if action == ModAction.UNMUTE:
        target = _target_person(room, actor, request.target)
        lifted = do_unmute(room=room, actor=actor, target=target, reason=reason, now=now)
        return _done(f"{target.handle} can share again." if lifted else f"{target.handle} wasn't muted here.")
    if action == ModAction.REMOVE:
        target = _target_person(room, actor, request.target)
        do_remove(room=room, actor=actor, target=target, minutes=request.minutes, reason=reason, now=now)
        return _done(f"{target.handle} was removed from this meeting.")
    if action == ModAction.BAN:
        if not has_perm(actor, PERM_MODERATE):
            raise ProtocolError(ErrorCode.NOT_ALLOWED, "Only a moderator can ban someone from a fellowship.")
        target = _target_person(room, actor, request.target)
        do_ban(room=room, actor=actor, target=target, minutes=request.minutes, reason=reason, now=now)
        return _done(f"{target.handle} is banned from {room.get_programme_display()} meetings.")
    if action == ModAction.DELETE:
        message = do_delete_message(
            room=room, actor=actor, message=_target_message(room, request.target), reason=reason
        )
        return _done(f"Message {message.seq} was deleted.")
    if action == ModAction.HOLD:
        message = do_hold_message(room=room, actor=actor, message=_target_message(room, request.target), reason=reason)
        return _done(f"Message {message.seq} is held for review.")
    if action == ModAction.RELEASE:
        message = do_release_message(
            room=room, actor=actor, message=_target_message(room, request.target), reason=reason
        )
        return _done(f"Message {message.seq} is shown to everyone.")
    if action == ModAction.SLOW:
        seconds = request.seconds or (request.minutes * 60 if request.minutes else 0)
        do_set_slow_mode(room=room, actor=actor, seconds=min(seconds, 3600), reason=reason)
        return _done(f"Slow mode: one message every {seconds} seconds." if seconds else "Slow mode is off.")
    if action in (ModAction.LOCK, ModAction.UNLOCK):
        do_set_locked(room=room, actor=actor, locked=action == ModAction.LOCK, reason=reason)
        return _done("The room is locked." if action == ModAction.LOCK else "The room is open for sharing again.")
    raise ProtocolError(ErrorCode.NOT_ALLOWED, "That isn't available in this room.")


def _restrict(
    kind: Restriction.Kind,
    *,
    room: Room,
    actor: Participant,
    target: Target,
    reason: str,
    until: datetime | None,
    detail: dict[str, Any],
    in_room: bool = True,
    programme: str = "",
) -> Restriction:
    """Record a mute, removal or ban (in this room, or by `programme` when not `in_room`) and audit it."""
    restriction = Restriction.objects.create(
        kind=kind,
        author_key=target.author_key,
        room=room if in_room else None,
        programme=programme,
        until=until,
        reason=reason,
        created_by_key=actor.author_key,
    )
    _audit(
        actor=actor,
        action=kind.value,
        room=room,
        target_key=target.author_key,
        target_handle=target.handle,
        reason=reason,
        detail=detail,
    )
    return restriction


@transaction.atomic
def do_mute(
    *, room: Room, actor: Participant, target: Target, minutes: int, reason: str = "", now: datetime | None = None
) -> Restriction:
    """Mute someone in this room for a while; they are told privately, the room is not."""
    now = now or timezone.now()
    mute = _restrict(
        Restriction.Kind.MUTE, room=room, actor=actor, target=target, reason=reason,
        until=now + timedelta(minutes=minutes), detail={"minutes": minutes},
    )  # fmt: skip
    broadcast.publish_to_author_on_commit(
        author_key=target.author_key,
        room=room.slug,
        frame=protocol.notice_frame(
            NoticeCode.MUTED, f"A chair or moderator has muted you in this meeting for {minutes} minutes."
        ),
    )
    return mute


@transaction.atomic
def do_unmute(*, room: Room, actor: Participant, target: Target, reason: str = "", now: datetime | None = None) -> int:
    """Lift this person's mutes in this room (a moderator also lifts site-wide mutes)."""
    now = now or timezone.now()
    scope = Q(room=room) | Q(room__isnull=True) if has_perm(actor, PERM_MODERATE) else Q(room=room)
    lifted = (
        Restriction.objects.active(now)
        .filter(scope, author_key=target.author_key, kind=Restriction.Kind.MUTE)
        .update(lifted_at=now)
    )
    _audit(
        actor=actor,
        action="unmute",
        room=room,
        target_key=target.author_key,
        target_handle=target.handle,
        reason=reason,
        detail={"lifted": lifted},
    )
    if lifted:
        broadcast.publish_to_author_on_commit(
            author_key=target.author_key,
            room=room.slug,
            frame=protocol.notice_frame(NoticeCode.UNMUTED, "You can share in this meeting again."),
        )
    return lifted


@transaction.atomic
def do_remove(
    *,
    room: Room,
    actor: Participant,
    target: Target,
    minutes: int | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> Restriction:
    """Remove someone from this room (for a day unless told otherwise) and close their sockets in it."""
    now = now or timezone.now()
    minutes = minutes or DEFAULT_REMOVE_MINUTES
    removal = _restrict(
        Restriction.Kind.REMOVE, room=room, actor=actor, target=target, reason=reason,
        until=now + timedelta(minutes=minutes), detail={"minutes": minutes},
    )  # fmt: skip
    broadcast.publish_control_on_commit(author_key=target.author_key, action="remove", rooms=[room.slug])
    return removal


@transaction.atomic
def do_ban(
    *,
    room: Room,
    actor: Participant,
    target: Target,
    minutes: int | None = None,
    reason: str = "",
    now: datetime | None = None,
    everywhere: bool = False,
) -> Restriction:
    """Ban someone from every room of this room's fellowship (`everywhere`: from every room); close their sockets."""
    now = now or timezone.now()
    programme = "" if everywhere else room.programme  # a blank programme bars every room (selectors.py)
    ban = _restrict(
        Restriction.Kind.BAN, room=room, actor=actor, target=target, reason=reason,
        until=now + timedelta(minutes=minutes) if minutes else None,
        detail={"programme": programme or "all", "minutes": minutes},
        in_room=False, programme=programme,
    )  # fmt: skip
    slugs = None if everywhere else list(Room.objects.filter(programme=programme).values_list("slug", flat=True))
    broadcast.publish_control_on_commit(author_key=target.author_key, action="ban", rooms=slugs)
    return ban


@transaction.atomic
def do_delete_message(*, room: Room, actor: Participant, message: Message, reason: str = "") -> Message:
    """Delete a message: every open screen replaces it, and it is gone from history and resume."""
    message.state = Message.State.DELETED
    message.save(update_fields=["state"])
    _audit(
        actor=actor,
        action="delete",
        room=room,
        target_key=message.author_key,
        target_handle=message.handle,
        reason=reason,
        detail={"message_id": message.seq},
    )
    frame = {"type": protocol.ServerType.DELETED.value, "id": message.seq}
    broadcast.publish_room_frame_on_commit(slug=room.slug, seq=None, text=protocol.encode(frame))
    return message


@transaction.atomic
def do_hold_message(*, room: Room, actor: Participant, message: Message, reason: str = "") -> Message:
    """Hide a message from the room for review; its author still sees it, marked as held."""
    if message.state == Message.State.HELD:
        return message
    message.state = Message.State.HELD
    message.save(update_fields=["state"])
    _audit(
        actor=actor,
        action="hold",
        room=room,
        target_key=message.author_key,
        target_handle=message.handle,
        reason=reason,
        detail={"message_id": message.seq},
    )
    peers = {"type": protocol.ServerType.DELETED.value, "id": message.seq, "held": True}
    broadcast.publish_room_frame_on_commit(
        slug=room.slug,
        seq=None,
        text=protocol.encode(peers),
        own=protocol.encode(message_frame(message, own=True)),
        author_key=message.author_key,
    )
    return message


@transaction.atomic
def do_release_message(*, room: Room, actor: Participant, message: Message, reason: str = "") -> Message:
    """Show a held message to the room. It keeps its id; clients place it in order."""
    if message.state != Message.State.HELD:
        raise ProtocolError(ErrorCode.INVALID, "That message isn't held.")
    message.state = Message.State.VISIBLE
    message.save(update_fields=["state"])
    _audit(
        actor=actor,
        action="release",
        room=room,
        target_key=message.author_key,
        target_handle=message.handle,
        reason=reason,
        detail={"message_id": message.seq},
    )
    # Sent without a seq: members have moved past this id, and the hub's ordering only applies to new ones.
    broadcast.publish_room_frame_on_commit(
        slug=room.slug,
        seq=None,
        text=protocol.encode(message_frame(message)),
        own=protocol.encode(message_frame(message, own=True)),
        author_key=message.author_key,
    )
    return message


@transaction.atomic
def do_set_slow_mode(*, room: Room, actor: Participant, seconds: int, reason: str = "") -> Room:
    """Allow one message per `seconds` per person (0 turns slow mode off); the room is told."""
    Room.objects.filter(pk=room.pk).update(slow_mode_seconds=seconds)
    room.slow_mode_seconds = seconds
    _audit(actor=actor, action="slow", room=room, reason=reason, detail={"seconds": seconds})
    text = f"Slow mode is on: one message every {seconds} seconds." if seconds else "Slow mode is off."
    _notice_room(room, NoticeCode.SLOW_MODE, text)
    return room


@transaction.atomic
def do_set_locked(*, room: Room, actor: Participant, locked: bool, reason: str = "") -> Room:
    """Pause or resume sharing in the room (chairs and staff can still write); the room is told."""
    Room.objects.filter(pk=room.pk).update(locked=locked)
    room.locked = locked
    _audit(actor=actor, action="lock" if locked else "unlock", room=room, reason=reason)
    if locked:
        _notice_room(room, NoticeCode.LOCKED, "The chair has paused sharing for a moment.")
    else:
        _notice_room(room, NoticeCode.UNLOCKED, "Sharing is open again.")
    return room


# --- Reports ------------------------------------------------------------------------------------------


def report_frame(report: Report) -> dict[str, Any]:
    """Return a report as moderators see it. Who reported is never in it."""
    body = report.message.body
    return {
        "type": protocol.ServerType.REPORT.value,
        "id": report.pk,
        "room": report.room.slug,
        "room_name": report.room.name,
        "message_id": report.message.seq,
        "handle": report.message.handle,
        "excerpt": body[:EXCERPT_CHARS] + ("…" if len(body) > EXCERPT_CHARS else ""),
        "reason": report.reason,
        "state": report.state,
        "created_at": _iso(report.created_at),
    }


@transaction.atomic
def check_report(*, room: Room, reporter: Participant, message_id: int, reason: str) -> Report:
    """Put a message in the moderators' queue. Reporting the same message twice files one report."""
    message = Message.objects.filter(room=room, seq=message_id).exclude(state=Message.State.DELETED).first()
    if message is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "There is no such message.")
    report, created = Report.objects.get_or_create(
        message=message, reporter_key=reporter.author_key, defaults={"room": room, "reason": reason}
    )
    if created:
        broadcast.publish_moderation_on_commit(frame=report_frame(report), audience=PERM_VIEW_REPORTS)
    return report


@transaction.atomic
def do_close_report(*, report_id: int, actor: Participant, state: str, note: str = "") -> Report:
    """Mark a report acted on or dismissed."""
    if not has_perm(actor, PERM_CHANGE_REPORTS):
        raise ProtocolError(ErrorCode.NOT_ALLOWED, "Only moderators can close reports.")
    if state not in (Report.State.ACTIONED, Report.State.DISMISSED):
        raise ProtocolError(ErrorCode.INVALID, "A report is closed as actioned or dismissed.")
    report = (
        Report.objects.select_for_update(of=("self",)).select_related("room", "message").filter(pk=report_id).first()
    )
    if report is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "There is no such report.")
    report.state, report.handled_by_handle, report.handled_at = state, actor.handle, timezone.now()
    report.save(update_fields=["state", "handled_by_handle", "handled_at"])
    _audit(
        actor=actor,
        action=f"report_{state}",
        room=report.room,
        target_key=report.message.author_key,
        target_handle=report.message.handle,
        reason=note,
        detail={"report": report.pk, "message_id": report.message.seq},
    )
    broadcast.publish_moderation_on_commit(frame=report_frame(report), audience=PERM_VIEW_REPORTS)
    return report


def open_reports() -> list[Report]:
    return list(Report.objects.filter(state=Report.State.OPEN).select_related("room", "message").order_by("created_at"))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


# --- The dashboard ------------------------------------------------------------------------------------


def on_call_rows(*, now: datetime) -> list[dict[str, Any]]:
    """Return who is on call now, by handle and position, with when their shift ends in its own time zone."""
    return [
        {
            "handle": shift.user.handle,
            "position": shift.position,
            "until": timezone.localtime(shift.ends_at, ZoneInfo(shift.time_zone)).strftime("%a %H:%M"),
            "time_zone": shift.time_zone,
        }
        for shift in on_call(now=now)
    ]


def moderation_welcome(access: StaffAccess, *, now: datetime | None = None) -> dict[str, Any]:
    """Return the first frame on the moderation channel: the live queue this person may see."""
    now = now or timezone.now()
    return {
        "type": protocol.ServerType.WELCOME.value,
        "you": {"handle": access.participant.handle},
        "can": {"handle_flags": access.handle_flags, "moderate": access.moderate, "reports": access.reports},
        "flags": [flag_frame(f) for f in live_flags()] if access.flags else [],
        "reports": [report_frame(r) for r in open_reports()] if access.reports else [],
        "on_call": on_call_rows(now=now),
        "outcomes": [{"value": value, "label": label} for value, label in Flag.Outcome.choices],
    }
