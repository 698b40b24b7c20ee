"""`manage.py expire_points [--at ISO_TIME] [--dry-run]`: the daily expiry job (SPEC §11), as of a given time.

Beat runs the same job every day (JIFEN_EXPIRY_RUN_AT); this runs it by hand: to catch up after
beat was down, or, with `--dry-run`, to see what a date will expire. It is safe to run at any
time and any number of times: a lot expires once (G14).
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.core.clock import local_text
from apps.core.periods import site_timezone
from apps.ledger.services.expiry import ExpiryReport, point_type_codes, points_expire, points_expire_preview

# A run "now" from a machine whose clock is a little ahead of the database's is still now.
FUTURE_SLACK = timedelta(minutes=1)


def _moment(text: str):
    try:
        at = parse_datetime(text.strip())
    except ValueError:  # well-formed, but no such date (month 13)
        at = None
    if at is None:
        raise CommandError(f"--at {text!r} is not an ISO 8601 time, e.g. 2027-01-01T00:05 or 2027-01-01T00:05+08:00")
    if not 1900 <= at.year <= 2200:
        raise CommandError(f"--at {text!r}: the year must be from 1900 to 2200")
    if timezone.is_naive(at):  # the site's local time, like every time an operator types
        at = at.replace(tzinfo=site_timezone())
    return at


class Command(BaseCommand):
    help = (
        "Expire the points whose lots reached their end (SPEC §11): one expiry entry per account, every due lot once. "
        "--at runs the job as of another time (not later than now, except with --dry-run); --dry-run only prints "
        "what would expire."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--at", help="ISO 8601 time; without an offset, the site's local time (default: now)")
        parser.add_argument("--dry-run", action="store_true", help="print what would expire; change nothing")
        parser.add_argument("--chunk-size", type=int, default=None, help="accounts per transaction (default JIFEN_EXPIRY_CHUNK)")

    def handle(self, *args, **options) -> None:
        now = timezone.now()
        at = _moment(options["at"]) if options["at"] else now
        if options["chunk_size"] is not None and options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1")
        if options["dry_run"]:
            self._print(points_expire_preview(at=at))
            return
        if at > now + FUTURE_SLACK:
            raise CommandError(
                f"--at {local_text(at)} is in the future: points expire when their time comes, never early. "
                "Use --dry-run to see what that time will expire."
            )
        self._print(points_expire(at=at, chunk_size=options["chunk_size"]))

    def _print(self, report: ExpiryReport) -> None:
        verb = "Would expire" if report.dry_run else "Expired"
        when = local_text(report.at, "%Y-%m-%d %H:%M:%S %Z")
        codes = point_type_codes()
        for point_type_id, found in sorted(report.by_type.items(), key=lambda item: codes.get(item[0], "")):
            self.stdout.write(
                f"{verb} {found.points:,} {codes.get(point_type_id, point_type_id)} points "
                f"from {found.accounts:,} accounts ({found.lots:,} lots)"
            )
        summary = f"{verb} {report.points:,} points from {report.accounts:,} accounts ({report.lots:,} lots) as of {when}."
        self.stdout.write(self.style.SUCCESS(summary) if report.points else summary)
        if report.disagreeing:
            shown = ", ".join(str(pk) for pk in report.disagreeing[:20])
            self.stderr.write(
                f"{len(report.disagreeing)} accounts were left alone: their lots hold more than their balance "
                f"(invariant 6; run manage.py verify_ledger): {shown}"
            )
