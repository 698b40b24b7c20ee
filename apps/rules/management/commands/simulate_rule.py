"""`manage.py simulate_rule SCORE_TYPE --since DATE [--until DATE] [--top N] [--json]`."""

import json

from django.core.management.base import BaseCommand, CommandError

from apps.core.clock import local
from apps.rules.management.rule_args import parse_moment, rule_by_code
from apps.rules.selectors.dry_run import DryRun, rule_dry_run


def print_dry_run(command: BaseCommand, dry_run: DryRun) -> None:
    """The dry run's figures as lines of text."""
    window, tally = dry_run.window, dry_run.tally
    # In the site's zone, with its offset, as every time an operator reads (apps/core/clock.py).
    since = local(window.start).isoformat() if window.start else "the beginning"
    write = command.stdout.write
    write(f"rule {dry_run.rule.score_type}: completions from {since} until {local(window.end).isoformat()}")
    write(f"completions read: {tally.completions}  counted: {tally.counted}")
    write(f"recipients: {tally.recipients}  awards: {tally.awards}  points: {tally.points}")
    write("completions by reason:")
    for reason, count in dry_run.reasons():
        write(f"  {reason:<24} {count}")
    if dry_run.top:
        write("top users (points, awards):")
        for user in dry_run.top:
            write(f"  {user.username:<24} {user.points:>8} {user.awards:>6}")
    write(f"replayed in {tally.seconds:.2f} s ({dry_run.rate:,.0f} completions/s)")


class Command(BaseCommand):
    help = "Replay a rule (a draft too) over its task's past completions and show what it would have awarded. Writes nothing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("score_type")
        parser.add_argument("--since", required=True, help="ISO date or time (site time zone if naive)")
        parser.add_argument("--until", help="ISO date or time; default now")
        parser.add_argument("--top", type=int, default=10, help="how many top users to list")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the figures as JSON")

    def handle(self, *args, score_type: str, since: str, until: str | None, top: int, as_json: bool, **options) -> None:
        if top < 0:
            raise CommandError("--top must be 0 or more")
        rule = rule_by_code(score_type)
        start = parse_moment(since, "--since")
        end = parse_moment(until, "--until") if until else None
        if end is not None and end <= start:
            raise CommandError("--until must be after --since")
        dry_run = rule_dry_run(rule=rule, since=start, until=end, top=top)
        if as_json:
            self.stdout.write(json.dumps(dry_run.as_dict(), indent=2))
        else:
            print_dry_run(self, dry_run)
