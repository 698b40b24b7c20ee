"""`manage.py ingest_events FILE|-`: run JSON Lines events through the pipeline (SPEC §2)."""

import sys
from collections import Counter

from django.core.management.base import BaseCommand, CommandError

from apps.tracking.events import EventError
from apps.tracking.ingest import LineReader, Skipped
from apps.tracking.routing import build_route_table
from apps.tracking.services.pipeline import event_dispatch, event_process


class Command(BaseCommand):
    help = "Process events from a JSON Lines file (or - for standard input), in order; re-ingesting changes nothing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="JSON Lines file, or - for standard input")
        parser.add_argument("--async", dest="use_broker", action="store_true", help="enqueue through the broker instead")

    def handle(self, *args, file: str, use_broker: bool, **options) -> None:
        reader = LineReader(build_route_table())
        counts: Counter[str] = Counter()
        try:
            stream = sys.stdin if file == "-" else open(file, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        with stream:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    result = reader.read(line)
                except EventError as exc:
                    counts["bad"] += 1
                    self.stderr.write(f"line {number}: {exc}")
                    continue
                if isinstance(result, Skipped):
                    counts["skipped"] += 1
                    self.stdout.write(f"line {number}: skipped: {result.reason}")
                elif use_broker:
                    event_dispatch(event=result)
                    counts["enqueued"] += 1
                else:
                    counts[str(event_process(event=result))] += 1
        summary = ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "no events"
        if counts["bad"]:
            raise CommandError(f"{counts['bad']} bad line(s); {summary}")
        self.stdout.write(self.style.SUCCESS(summary))
