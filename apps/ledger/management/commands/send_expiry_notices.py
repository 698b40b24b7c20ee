"""`manage.py send_expiry_notices [--days N]`: tell users now of points that expire within N days (SPEC §12).

Beat runs the same job daily with the expiry job; this runs it by hand (after beat was down, or
to send notices at once after raising JIFEN_EXPIRY_NOTICE_DAYS). Safe to run any number of
times: each account is told once per day of expiry.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.ledger.services.expiry_notices import expiry_notices_send


class Command(BaseCommand):
    help = (
        "Tell users of points that expire within --days days (default JIFEN_EXPIRY_NOTICE_DAYS): "
        "a notification and a points.expiring webhook, once per account and day of expiry."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=None, help="how many days ahead (default JIFEN_EXPIRY_NOTICE_DAYS)")

    def handle(self, *args, **options) -> None:
        days = settings.JIFEN_EXPIRY_NOTICE_DAYS if options["days"] is None else options["days"]
        if not 1 <= days <= 366:
            raise CommandError("--days must be from 1 to 366")
        sent = expiry_notices_send(days=days)
        self.stdout.write(self.style.SUCCESS(f"{sent} expiry notice(s) sent for points expiring within {days} days."))
