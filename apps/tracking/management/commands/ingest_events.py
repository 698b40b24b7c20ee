"""`manage.py ingest_events FILE|-`: run JSON Lines events through the pipeline (SPEC §2)."""

import logging
import sys
from collections import Counter

from django.core.management.base import BaseCommand, CommandError

from apps.core.log_context import log_context
from apps.tracking.events import EventError
from apps.tracking.ingest import LineReader, Skipped
from apps.tracking.routing import build_route_table
from apps.tracking.services.pipeline import event_dispatch, event_log_fields, event_process

logger = logging.getLogger(__name__)


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
                    outcome = self._line(reader, raw, use_broker=use_broker)
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

    @staticmethod
    def _line(reader: LineReader, raw: bytes | str, *, use_broker: bool) -> Skipped | str | None:
        """Read and process one line: its outcome, a Skipped, or None for a blank line; raises EventError."""
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise EventError(f"not UTF-8 (byte {exc.start})") from None
        if not raw.strip():
            return None
        result = reader.read(raw)
        if isinstance(result, Skipped):
            return result
        if use_broker:
            where = event_dispatch(event=result, source="ingest")
            logger.info(
                "event %s for user %s (%s) handed to the %s",
                result.event_id,
                result.user_id,
                result.task_type,
                where,
                extra=event_log_fields(result),
            )
            return "enqueued"
        return str(event_process(event=result))
