from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models


class Programme(models.TextChoices):
    AA = "aa", "Alcoholics Anonymous"
    NA = "na", "Narcotics Anonymous"
    SMART = "smart", "SMART Recovery"
    AL_ANON = "al_anon", "Al-Anon"
    NAR_ANON = "nar_anon", "Nar-Anon"
    FAMILY = "family", "Family group"
    WOMENS_CIRCLE = "womens_circle", "Women's circle"
    THERAPIST_LED = "therapist_led", "Therapist-led group therapy"
    PEER_MENTORSHIP = "peer_mentorship", "Peer mentorship"
    AFTERCARE = "aftercare", "Aftercare"
    SHARING_CIRCLE = "sharing_circle", "Sharing circle"
    GENERAL = "general", "General"


class Access(models.TextChoices):
    OPEN = "open", "Open: anyone, guests included"
    CLOSED = "closed", "Closed: members in recovery"
    FAMILY = "family", "Family: family members"
    WOMEN = "women", "Women only (self-attested members)"
    PRIVATE = "private", "Private: a counsellor and one member"


class Retention(models.IntegerChoices):
    """How long messages are kept after they are sent, in hours."""

    DAY = 24, "24 hours"
    WEEK = 24 * 7, "7 days"
    MONTH = 24 * 30, "30 days"


class Room(models.Model):
    slug = models.SlugField(max_length=80, unique=True)  # never changes: links and feeds depend on it
    name = models.CharField(max_length=120)
    programme = models.CharField(max_length=32, choices=Programme.choices, default=Programme.GENERAL)
    access = models.CharField(max_length=16, choices=Access.choices, default=Access.OPEN)
    retention_hours = models.PositiveIntegerField(choices=Retention.choices, default=Retention.WEEK)
    description = models.TextField(blank=True)
    format_text = models.TextField("readings and format", blank=True)
    chairs = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="chaired_rooms")
    # Family rooms only: whether members in recovery may join too (Al-Anon "open" meetings).
    open_to_members = models.BooleanField(default=False)
    # A youth room, say, may hold `imminent` crisis messages for a counsellor instead of showing them.
    hold_imminent = models.BooleanField(
        default=False,
        help_text="Hold messages the crisis detector rates imminent for review instead of showing them.",
    )
    locked = models.BooleanField(default=False)
    slow_mode_seconds = models.PositiveIntegerField(default=0)
    # The last message number handed out in this room; messages are numbered 1, 2, 3... without gaps.
    last_seq = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def retention(self) -> timedelta:
        return timedelta(hours=self.retention_hours)

    @property
    def retention_label(self) -> str:
        return (
            Retention(self.retention_hours).label
            if self.retention_hours in Retention.values
            else (f"{self.retention_hours} hours")
        )
