"""`manage.py rebuild_leaderboards`: recompute every leaderboard total from the ledger."""

import time

from django.core.management.base import BaseCommand

from apps.ledger.services.leaderboard import leaderboards_rebuild


class Command(BaseCommand):
    help = (
        "Replace every leaderboard total by the one the ledger implies (awards net of reversals, per rule and "
        "overall, per day, week, month, year and all time). Idempotent; safe while the pipeline runs."
    )

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        written = leaderboards_rebuild()
        self.stdout.write(
            self.style.SUCCESS(f"Rebuilt the leaderboards: {written} totals in {time.monotonic() - started:.1f} s.")
        )
