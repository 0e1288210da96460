"""Seed demo rooms and staff accounts. Idempotent; passwords are printed once, when accounts are created."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from accounts.models import Role, User
from rooms.models import Access, Programme, Retention, Room

DEMO_ROOMS = [
    (
        "open-recovery-circle",
        "Open Recovery Circle",
        Programme.GENERAL,
        Access.OPEN,
        Retention.DAY,
        "An open meeting for anyone affected by addiction. Guests welcome.",
    ),
    (
        "na-kolkata-evening",
        "NA Kolkata Evening",
        Programme.NA,
        Access.OPEN,
        Retention.WEEK,
        "Narcotics Anonymous, open discussion. Just for today.",
    ),
    (
        "aa-big-book-closed",
        "AA Big Book Study (closed)",
        Programme.AA,
        Access.CLOSED,
        Retention.WEEK,
        "A closed meeting for people who have a desire to stop drinking.",
    ),
    (
        "smart-tools",
        "SMART Recovery Tools",
        Programme.SMART,
        Access.OPEN,
        Retention.DAY,
        "Self-management and recovery training: the 4-point programme.",
    ),
    (
        "family-al-anon",
        "Family Group (Al-Anon style)",
        Programme.AL_ANON,
        Access.FAMILY,
        Retention.WEEK,
        "For family and friends of people with addiction.",
    ),
    (
        "womens-circle",
        "Women's Circle",
        Programme.WOMENS_CIRCLE,
        Access.WOMEN,
        Retention.WEEK,
        "A circle for women in recovery, by self-attestation.",
    ),
]

DEMO_STAFF = [
    ("demo-moderator", "Moderator Meera", Role.MODERATOR),
    ("demo-counsellor", "Counsellor Kabir", Role.COUNSELLOR),
]


class Command(BaseCommand):
    help = "Create demo rooms and a demo moderator and counsellor (prints their passwords once)."

    def handle(self, *args: Any, **options: Any) -> None:
        for slug, name, programme, access, retention, description in DEMO_ROOMS:
            Room.objects.get_or_create(
                slug=slug,
                defaults={
                    "name": name,
                    "programme": programme,
                    "access": access,
                    "retention_hours": retention,
                    "description": description,
                },
            )
        for username, handle, role in DEMO_STAFF:
            if User.objects.filter(username=username).exists():
                continue
            password = secrets.token_urlsafe(12)
            # Staff handles may say what they are: that is the point of the staff-word rule.
            user = User(username=username, handle=handle, handle_key=f"staff:{username}")
            user.set_password(password)
            user.save()
            user.groups.add(Group.objects.get_or_create(name=role.value)[0])
            self.stdout.write(
                self.style.WARNING(f"Created {role.label.lower()} '{username}' with password: {password}")
            )
        self.stdout.write(f"Demo data ready: {Room.objects.count()} rooms.")
