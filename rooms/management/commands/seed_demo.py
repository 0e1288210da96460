"""Seed demo rooms and staff accounts. Idempotent; passwords are printed once, when accounts are created."""

from __future__ import annotations

import secrets
from datetime import time, timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.utils import timezone

from accounts.models import Role, User
from rooms.models import Access, Meeting, Programme, Retention, Room

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
    (
        "round-the-clock-checkin",
        "Round-the-Clock Check-in",
        Programme.SHARING_CIRCLE,
        Access.OPEN,
        Retention.DAY,
        "A drop-in sharing circle that meets every day, all day: there is always a room open.",
    ),
]

# Schedules for the demo rooms (slug -> rrule, start, duration, types, readings). `open-recovery-circle`
# has none on purpose: a room with no schedule is always live, and the README and tests rely on it.
# The round-the-clock check-in runs all day every day, so a *scheduled* meeting is live at any hour.
DEMO_SCHEDULES: dict[str, tuple[str, time, timedelta, list[str], str]] = {
    "na-kolkata-evening": (
        "FREQ=DAILY",
        time(19, 0),
        timedelta(minutes=90),
        ["O", "D", "EN"],
        "We open with a moment of silence, then the NA preamble: who is an addict, what is the NA programme, why are we here.",
    ),
    "aa-big-book-closed": (
        "FREQ=WEEKLY;BYDAY=MO,TH",
        time(7, 0),
        timedelta(hours=1),
        ["C", "B", "EN"],
        "The AA preamble, then we read a few pages of the Big Book together and share on them.",
    ),
    "smart-tools": (
        "FREQ=WEEKLY;BYDAY=SA",
        time(11, 0),
        timedelta(minutes=90),
        ["O", "D", "EN"],
        "Welcome to SMART Recovery. We check in, set the agenda, work through a tool, and check out.",
    ),
    "family-al-anon": (
        "FREQ=WEEKLY;BYDAY=WE",
        time(18, 0),
        timedelta(hours=1),
        ["C", "EN"],
        "The Al-Anon welcome: we share our experience, strength and hope as family and friends.",
    ),
    "womens-circle": (
        "FREQ=WEEKLY;BYDAY=TU,FR",
        time(16, 0),
        timedelta(hours=1),
        ["W", "C", "EN"],
        "We open with a check-in round: your name, how you are arriving today.",
    ),
    "round-the-clock-checkin": (
        "FREQ=DAILY",
        time(0, 0),
        timedelta(hours=24),
        ["O", "D", "EN"],
        "Drop in any time. Say hello, share how today is going, listen to others.",
    ),
}

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
        self._schedule_demo_meetings()
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

    def _schedule_demo_meetings(self) -> None:
        """Give the demo rooms realistic schedules (Kolkata time), once; existing schedules are left alone."""
        today = timezone.localdate()
        for slug, (rule, start, duration, types, readings) in DEMO_SCHEDULES.items():
            room = Room.objects.filter(slug=slug).first()
            if room is None or Meeting.objects.filter(room=room).exists():
                continue
            if not room.format_text:
                room.format_text = readings
                room.save(update_fields=["format_text"])
            Meeting.objects.create(
                room=room,
                slug=slug,
                rrule=rule,
                start_local=start,
                duration=duration,
                tz="Asia/Kolkata",
                dtstart=today - timedelta(days=7),
                types=types,
                language="en",
                # The all-day check-in ends at midnight and opens again at once: no waiting room, no gap.
                doors_open=timedelta(0) if duration == timedelta(hours=24) else timedelta(minutes=10),
            )
