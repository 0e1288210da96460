"""Put the demo counsellors on call (primary, backup, supervisor) for the coming days. Run after seed_demo."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from moderation.rota import seed_demo_rota


class Command(BaseCommand):
    help = (
        "Seed an around-the-clock demo rota: demo-counsellor primary, demo-backup backup, demo-supervisor supervisor."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=int, default=7)
        parser.add_argument("--time-zone", default="Asia/Kolkata")

    def handle(self, *args: Any, **options: Any) -> None:
        for line in seed_demo_rota(days=options["days"], time_zone=options["time_zone"]):
            self.stdout.write(self.style.WARNING(line))
        self.stdout.write("Rota ready. See who is on call at /moderation/.")
