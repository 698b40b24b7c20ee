"""`manage.py backfill_rule SCORE_TYPE [--dry-run] [--user USERNAME]`."""

from django.core.management.base import BaseCommand, CommandError

from apps.core.clock import local_text
from apps.core.lifecycle import WorkflowForbidden
from apps.rules.management.commands.simulate_rule import print_dry_run
from apps.rules.management.rule_args import USER_HELP, operator_by_username, rule_by_code
from apps.rules.models import BackfillRun, ScoreRule
from apps.rules.selectors.dry_run import rule_dry_run
from apps.rules.services.backfill import BackfillRefused, backfill_window, score_rule_backfill


class Command(BaseCommand):
    help = (
        "Award what the completions an active rule never decided (those recorded before its activation) earned "
        "under it (from its start time). Runs here, synchronously, then waits JIFEN_RULES_REFRESH_S + 5 s for a "
        "catch-up pass; a rule is backfilled once."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("score_type")
        parser.add_argument("--dry-run", action="store_true", help="show what it would award; write nothing")
        parser.add_argument("--user", help=USER_HELP + " (starting a backfill needs the right to activate rules)")

    def handle(self, *args, score_type: str, dry_run: bool, user: str | None = None, **options) -> None:
        actor = operator_by_username(user)
        rule = rule_by_code(score_type)
        if rule.status != ScoreRule.Status.ACTIVE:
            raise CommandError(f"{rule.score_type} is {rule.status}: only an active rule can be backfilled")
        if dry_run:
            # What the run takes: the completions in the rule's window that it never decided.
            window, _activated = backfill_window(rule)
            print_dry_run(self, rule_dry_run(rule=rule, since=window.start, live_recipients=True, undecided_only=True))
            self.stdout.write("dry run: nothing was written")
            return
        try:
            run = score_rule_backfill(rule=rule, actor=actor)
        except WorkflowForbidden as exc:
            raise CommandError(str(exc)) from None
        except BackfillRefused as exc:
            done = rule.backfills.filter(status=BackfillRun.Status.DONE).first()
            if done is None:
                raise CommandError(str(exc)) from None
            # Idempotent: asked again, it says so and awards nothing.
            self.stdout.write(
                f"{rule.score_type} was backfilled already (run {done.pk}, {local_text(done.finished_at)}): nothing to do"
            )
            return
        self.stdout.write(
            f"run {run.pk}: {run.completions} completions, {run.counted} counted, "
            f"{run.recipients} recipients, {run.awards} awards, {run.points} points"
        )
        for reason, count in sorted(run.reasons.items(), key=lambda item: -item[1]):
            self.stdout.write(f"  {reason:<24} {count}")
        if run.status != BackfillRun.Status.DONE:
            raise CommandError(f"run {run.pk} {run.status}: {run.error}")
        self.stdout.write(self.style.SUCCESS(f"run {run.pk} done"))
