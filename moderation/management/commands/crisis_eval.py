"""Evaluate the crisis detector on a labelled file: a thin wrapper around moderation.crisis_eval.main."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from moderation.crisis_eval import main


class Command(BaseCommand):
    help = "Evaluate the crisis detector on a JSON Lines file (see docs/crisis-detector.md). Args go to crisis_eval."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "args", nargs=argparse.REMAINDER, help="arguments for crisis_eval, e.g. FILE --min-recall 0.95"
        )

    def handle(self, *args: str, **options: Any) -> None:
        code = main(list(args))
        if code:
            raise CommandError(f"crisis_eval exited with {code}", returncode=code)
