"""`manage.py verify_ledger`: check the ledger's invariants (SPEC §5) and name what fails.

All six invariants of SPEC §5: the chain and balances (1), the append-only trigger (2), one live
award per completion and rule (3), capped rules (4), no adjustment, spend, hold or expiry below
zero and each posted adjustment with its entry (5), lots that hold each balance (6). The
leaderboard totals are checked against the ledger as well (`rebuild_leaderboards` repairs them),
and badges against the awards that grant them (SPEC §12).
"""

from django.core.management.base import BaseCommand, CommandError

from apps.ledger.models import Account
from apps.ledger.selectors.leaderboard import leaderboard_problems
from apps.ledger.selectors.ledger import ledger_problems
from apps.rules.selectors.badges import badge_problems


class Command(BaseCommand):
    help = (
        "Check ledger invariants 1-6, the leaderboard totals and the badges over the whole ledger; "
        "exit non-zero naming the accounts and totals that fail."
    )

    def handle(self, *args, **options) -> None:
        problems = ledger_problems()
        boards = leaderboard_problems()
        badges = badge_problems()
        if not problems and not boards and not badges:
            self.stdout.write(
                self.style.SUCCESS("Ledger OK: invariants 1-6 hold, leaderboard totals and badges agree with the ledger.")
            )
            return
        for problem in [*problems, *boards, *badges]:
            self.stderr.write(str(problem))
        failures = []
        if problems:
            ids = sorted({p.account_id for p in problems if p.account_id is not None})
            names = dict(Account.objects.filter(pk__in=ids).values_list("pk", "user__username"))
            listed = ", ".join(f"{pk} ({names.get(pk, '?')})" for pk in ids)
            named = f" in accounts {listed}" if ids else ""
            failures.append(f"{len(problems)} ledger problem(s){named}")
        if boards:
            users = ", ".join(str(user) for user in sorted({p.user_id for p in boards}))
            failures.append(
                f"{len(boards)} leaderboard total(s) disagree with the ledger, of users {users} "
                "(manage.py rebuild_leaderboards recomputes them)"
            )
        if badges:
            failures.append(f"{len(badges)} badge award(s) disagree with the awards of their rules")
        raise CommandError("; ".join(failures))
