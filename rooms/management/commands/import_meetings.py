"""Import a Meeting Guide feed (a file or an http(s) URL) into scheduled meetings. Thin: see services."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from rooms.feeds import FeedSourceError, read_feed_source
from rooms.meetingguide import Programme
from rooms.services import do_import_meetings


class Command(BaseCommand):
    help = "Create or update meetings from a Meeting Guide JSON feed; report what was created, changed and skipped."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("source", help="a feed file, or an http(s) URL")
        parser.add_argument(
            "--programme",
            choices=[p.value for p in Programme],
            help="the feed's programme (type codes mean different things per programme); inferred per row if not given",
        )
        parser.add_argument("--timezone", help="zone for rows without one (default: SAATHI_DEFAULT_TZ)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            data = read_feed_source(options["source"])
        except FeedSourceError as exc:
            raise CommandError(str(exc)) from None
        report = do_import_meetings(
            data=data,
            source=options["source"],
            today=timezone.localdate(),
            default_programme=options["programme"],
            default_tz=options["timezone"],
        )
        for slug in report.created:
            self.stdout.write(f"created  {slug}")
        for slug, fields in report.changed:
            self.stdout.write(f"changed  {slug}: {', '.join(fields)}")
        for slug in report.unchanged:
            self.stdout.write(f"skipped  {slug} (unchanged)")
        for row in report.rejected:
            self.stdout.write(self.style.WARNING(f"rejected row {row.index} ({row.slug_or_name}): {row.reason}"))
        for note in report.notes:
            self.stdout.write(f"note     {note.slug}: {note.message}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(report.created)} created, {len(report.changed)} changed, "
                f"{len(report.unchanged)} unchanged, {len(report.rejected)} rejected."
            )
        )
