from __future__ import annotations

from django.db import models
from django.db.models import Q
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

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.actor_handle} {self.action} {self.target_handle}"
