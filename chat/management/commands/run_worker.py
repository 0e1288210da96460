"""Run the background worker (meetings opening and closing, crisis escalation, retention)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from config.worker import run_forever, run_once


class Command(BaseCommand):
    help = "Run Saathi's background steps in a loop (or once with --once)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between rounds.")
        parser.add_argument("--once", action="store_true", help="Run every step once and exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            for name, count in run_once().items():
                self.stdout.write(f"{name}: {count}")
            return
        run_forever(interval=options["interval"])
