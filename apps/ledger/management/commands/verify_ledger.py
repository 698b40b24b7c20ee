"""`manage.py verify_ledger`: check the ledger's invariants (SPEC §5) and name what fails.

SPEC §5 asks for 1-4; 5 (no adjustment took a balance below zero, each posted adjustment has its
entry) is checked too, since adjustments are where an operator's mistake would show.
"""

from django.core.management.base import BaseCommand, CommandError

from apps.ledger.models import Account
from apps.ledger.selectors import ledger_problems


class Command(BaseCommand):
    help = "Check ledger invariants 1-5 over the whole ledger; exit non-zero naming the accounts that fail."

    def handle(self, *args, **options) -> None:
        problems = ledger_problems()
        if not problems:
            self.stdout.write(self.style.SUCCESS("Ledger OK: invariants 1-5 hold."))
            return
        for problem in problems:
            self.stderr.write(str(problem))
        ids = sorted({p.account_id for p in problems if p.account_id is not None})
        names = dict(Account.objects.filter(pk__in=ids).values_list("pk", "user__username"))
        listed = ", ".join(f"{pk} ({names.get(pk, '?')})" for pk in ids)
        named = f" in accounts {listed}" if ids else ""
        raise CommandError(f"{len(problems)} ledger problem(s){named}")
