"""Seed an on-call rota for a demo or a new Kendra: who is primary, backup and supervisor, and when."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, User
from moderation.models import RotaShift
from moderation.services import do_add_shift

# username, handle, position. demo-counsellor comes from `manage.py seed_demo`; the other two are made here.
DEMO_ROTA = [
    ("demo-counsellor", "Counsellor Kabir", RotaShift.Position.PRIMARY),
    ("demo-backup", "Counsellor Leela", RotaShift.Position.BACKUP),
    ("demo-supervisor", "Supervisor Meher", RotaShift.Position.SUPERVISOR),
]


@transaction.atomic
def seed_demo_rota(*, days: int = 7, time_zone: str = "Asia/Kolkata", now: datetime | None = None) -> list[str]:
    """Put the demo counsellors on call around the clock for `days` days from today; return new passwords.

    Idempotent: shifts that already cover a day are not added twice. Returns lines like
    "Created counsellor 'demo-backup' with password: ..." for accounts it had to create.
    """
    zone = ZoneInfo(time_zone)
    today = timezone.localtime(now or timezone.now(), zone).date()
    created: list[str] = []
    counsellors = Group.objects.get_or_create(name=Role.COUNSELLOR.value)[0]
    for username, handle, position in DEMO_ROTA:
        user = User.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            user = User(username=username, handle=handle, handle_key=f"staff:{username}")
            user.set_password(password)
            user.save()
            created.append(f"Created counsellor '{username}' with password: {password}")
        user.groups.add(counsellors)
        for offset in range(days):
            start = datetime.combine(today + timedelta(days=offset), datetime.min.time())
            starts = start.replace(tzinfo=zone)
            if RotaShift.objects.filter(user=user, position=position, starts_at=starts).exists():
                continue
            do_add_shift(
                user=user, position=position, starts=start, ends=start + timedelta(days=1), time_zone=time_zone
            )
    return created
