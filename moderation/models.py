from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from rooms.models import Room


class RestrictionQuerySet(models.QuerySet["Restriction"]):
    def active(self, now=None):  # type: ignore[no-untyped-def]
        now = now or timezone.now()
        return self.filter(Q(until__isnull=True) | Q(until__gt=now), lifted_at__isnull=True)


class Restriction(models.Model):
    """A mute, a removal from one room, or a ban from a fellowship (or everywhere)."""

    class Kind(models.TextChoices):
        MUTE = "mute", "Muted"
        REMOVE = "remove", "Removed from the room"
        BAN = "ban", "Banned"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    author_key = models.CharField(max_length=32, db_index=True)
    room = models.ForeignKey(Room, null=True, blank=True, on_delete=models.CASCADE)
    programme = models.CharField(max_length=32, blank=True)  # a ban: this fellowship, or blank for all rooms
    until = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    created_by_key = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)

    objects = RestrictionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.author_key}"


class AuditEntry(models.Model):
    """Who did what, when and why: every moderation and counsellor action. Members never read it."""

    actor_key = models.CharField(max_length=32)
    actor_handle = models.CharField(max_length=24)
    action = models.CharField(max_length=32)
    room = models.ForeignKey(Room, null=True, blank=True, on_delete=models.SET_NULL)
    target_key = models.CharField(max_length=32, blank=True)
    target_handle = models.CharField(max_length=24, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Set when the entry is a step in a crisis flag's life: the flag's history is its audit entries.
    flag = models.ForeignKey("Flag", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries")

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("moderate_rooms", "Can use moderation actions in every room")]

    def __str__(self) -> str:
        return f"{self.actor_handle} {self.action} {self.target_handle}"


class Level(models.TextChoices):
    """The crisis detector's levels that raise a flag (the same words as moderation.scanning.Level)."""

    CONCERN = "concern", "Concern"
    HIGH = "high", "High"
    IMMINENT = "imminent", "Imminent"


LEVEL_RANK = {Level.CONCERN: 1, Level.HIGH: 2, Level.IMMINENT: 3}


class Flag(models.Model):
    """A member who may be in crisis: raised by the detector or by the member asking to talk."""

    class Source(models.TextChoices):
        DETECTOR = "detector", "The crisis detector"
        MEMBER = "member", "The member asked to talk"

    class State(models.TextChoices):
        OPEN = "open", "Waiting for a counsellor"
        ACKNOWLEDGED = "acknowledged", "A counsellor has it"
        RESOLVED = "resolved", "Resolved"

    class Step(models.IntegerChoices):
        PRIMARY = 0, "On-call counsellor"
        BACKUP = 1, "Backup counsellor"
        SUPERVISOR = 2, "Supervisor"
        OUT_OF_BAND = 3, "Email and webhook"

    class Outcome(models.TextChoices):
        SUPPORTED = "supported", "Supported in a private conversation"
        REFERRED = "referred", "Referred to a helpline or service"
        EMERGENCY = "emergency", "Emergency services contacted"
        MEMBER_OK = "member_ok", "The member said they are OK"
        NO_RESPONSE = "no_response", "The member did not respond"
        FALSE_ALARM = "false_alarm", "Not a crisis"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="flags")
    # The message that raised (or last upgraded) the flag; null when the member asked to talk.
    message = models.ForeignKey("chat.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    author_key = models.CharField(max_length=32, db_index=True)  # internal; never shown, never sent
    handle = models.CharField(max_length=24)
    level = models.CharField(max_length=16, choices=Level.choices)
    categories = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.DETECTOR)
    wants_to_talk = models.BooleanField(default=False)
    member_said_ok = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN, db_index=True)
    step = models.PositiveSmallIntegerField(choices=Step.choices, default=Step.PRIMARY)
    raised_at = models.DateTimeField()
    # When the current step runs out: an open flag past its deadline escalates to the next step.
    deadline = models.DateTimeField(db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    owner_key = models.CharField(max_length=32, blank=True)
    owner_handle = models.CharField(max_length=24, blank=True)
    private_room = models.ForeignKey(Room, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    handoff_note = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)

    class Meta:
        ordering = ["-raised_at"]
        permissions = [
            ("handle_flag", "Can acknowledge, follow up and resolve crisis flags"),
        ]

    def __str__(self) -> str:
        return f"flag {self.pk} ({self.level})"

    @property
    def rank(self) -> int:
        return LEVEL_RANK.get(self.level, 0)  # type: ignore[call-overload]


class Report(models.Model):
    """A member's report of a message. The reported member is never told who reported it."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        ACTIONED = "actioned", "Acted on"
        DISMISSED = "dismissed", "Dismissed"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="reports")
    message = models.ForeignKey("chat.Message", on_delete=models.CASCADE, related_name="reports")
    reporter_key = models.CharField(max_length=32)  # internal only: not shown to anyone
    reason = models.CharField(max_length=500, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    handled_by_handle = models.CharField(max_length=24, blank=True)
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["message", "reporter_key"], name="report_once_per_reporter"),
        ]

    def __str__(self) -> str:
        return f"report {self.pk}"


class RotaShift(models.Model):
    """Who is on call, in which position, from when to when (entered in the shift's own time zone)."""

    class Position(models.TextChoices):
        PRIMARY = "primary", "Primary"
        BACKUP = "backup", "Backup"
        SUPERVISOR = "supervisor", "Supervisor"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shifts")
    position = models.CharField(max_length=16, choices=Position.choices)
    starts_at = models.DateTimeField(db_index=True)
    ends_at = models.DateTimeField(db_index=True)
    time_zone = models.CharField(max_length=64, default="Asia/Kolkata")

    class Meta:
        ordering = ["starts_at", "position"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="shift_ends_after_it_starts"),
        ]

    def __str__(self) -> str:
        return f"{self.position} {self.starts_at:%Y-%m-%d %H:%M}"


class PrivateRoomInvite(models.Model):
    """The one member a counsellor's private room admits (besides its counsellor, who chairs it)."""

    room = models.OneToOneField(Room, on_delete=models.CASCADE, related_name="private_invite")
    member_key = models.CharField(max_length=32, db_index=True)
    flag = models.ForeignKey(Flag, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"invite to {self.room_id}"
