from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    """Roles are Django groups of these names; `guest` is a session, not an account."""

    GUEST = "guest", "Guest"
    MEMBER = "member", "Member in recovery"
    FAMILY = "family", "Family member"
    CHAIR = "chair", "Chair"
    MODERATOR = "moderator", "Moderator"
    COUNSELLOR = "counsellor", "Counsellor"
    ADMIN = "admin", "Admin"


STAFF_ROLES = (Role.MODERATOR, Role.COUNSELLOR, Role.ADMIN)


class User(AbstractUser):
    """An account. `username` and `email` are private; peers only ever see `handle`."""

    class Kind(models.TextChoices):
        RECOVERY = "recovery", "I am in recovery"
        FAMILY = "family", "I am here for someone I love"

    first_name = None  # type: ignore[assignment]  # Saathi never asks for a real name
    last_name = None  # type: ignore[assignment]
    email = models.EmailField("email (optional, private)", blank=True)
    handle = models.CharField(max_length=24)
    handle_key = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.RECOVERY)
    # Women's circles are entered by self-attestation; nothing else is asked or kept about gender.
    attests_woman = models.BooleanField(default=False)
    # Private: never shown to anyone, never in a payload. A member may choose to share a milestone from it.
    sobriety_date = models.DateField("sobriety date (private)", null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.handle or f"user {self.pk}"

    def save(self, *args: object, **kwargs: object) -> None:
        password_changed = self._password is not None and self.pk is not None  # type: ignore[attr-defined]
        super().save(*args, **kwargs)  # type: ignore[arg-type]
        if password_changed:
            # Every open socket of this person closes; sessions other than the one that changed it are gone.
            from chat import broadcast
            from chat.protocol import CloseCode

            broadcast.publish_control_on_commit(author_key=f"u:{self.pk}", action="close", code=CloseCode.NOT_SIGNED_IN)


class GuestPass(models.Model):
    """A guest's seat: a handle held for a browser session. No account, no contact details, no IP."""

    token = models.CharField(max_length=64, unique=True)
    handle = models.CharField(max_length=24)
    handle_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.handle


class RetiredHandle(models.Model):
    """A handle key that belonged to a deleted account: never handed out again, so nobody inherits a past."""

    handle_key = models.CharField(max_length=64, unique=True)
    retired_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.handle_key
