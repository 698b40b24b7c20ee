"""`manage.py ingest_events FILE|-`: run JSON Lines events through the pipeline (SPEC §2)."""

import sys
from collections import Counter

from django.core.management.base import BaseCommand, CommandError

from apps.core.log_context import log_context
from apps.tracking.events import EventError
from apps.tracking.ingest import LineReader, Skipped, line_ingest
from apps.tracking.routing import build_route_table


class Command(BaseCommand):
    help = "Process events from a JSON Lines file (or - for standard input), in order; re-ingesting changes nothing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="JSON Lines file, or - for standard input")
        parser.add_argument("--async", dest="use_broker", action="store_true", help="enqueue through the broker instead")

    def handle(self, *args, file: str, use_broker: bool, **options) -> None:
        reader = LineReader(build_route_table())
        counts: Counter[str] = Counter()
        try:
            # Bytes, decoded line by line: a line that is not UTF-8 is one bad line, not the end of the file.
            stream = getattr(sys.stdin, "buffer", sys.stdin) if file == "-" else open(file, "rb")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        with stream, log_context(source="ingest"):
            for number, raw in enumerate(stream, start=1):
                try:
                    outcome = line_ingest(reader, raw, use_broker=use_broker)
                except EventError as exc:
                    counts["bad"] += 1
                    self.stderr.write(f"line {number}: {exc}")
                    continue
                except Exception as exc:
                    # Whatever one line does to the pipeline, the rest of the file still goes through.
                    counts["bad"] += 1
                    self.stderr.write(f"line {number}: not processed: {exc!r}")
                    continue
                if isinstance(outcome, Skipped):
                    counts["skipped"] += 1
                    self.stdout.write(f"line {number}: skipped: {outcome.reason}")
                elif outcome:
                    counts[outcome] += 1
        summary = ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "no events"
        if counts["bad"]:
            raise CommandError(f"{counts['bad']} bad line(s); {summary}")
        self.stdout.write(self.style.SUCCESS(summary))
