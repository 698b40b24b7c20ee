"""`manage.py seed_demo_data --users N --entries M`: a big, consistent data set for the admin at scale."""

import time

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from apps.community.seed import SeedError, SeedPlan, demo_data_seed
from apps.tasks.models import TaskConfig

OPERATOR = "seed-operator"


class Command(BaseCommand):
    help = (
        "Add N users and exactly M ledger entries (awards with their completions and progress, and adjustments), "
        "written in bulk with the ledger's invariants kept; check with verify_ledger afterwards."
    )

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=1000)
        parser.add_argument("--entries", type=int, default=10_000)
        parser.add_argument("--days", type=int, default=60, help="Spread the activity over the last DAYS local days.")
        parser.add_argument("--adjustments", type=float, default=0.01, help="Share of the entries that are adjustments.")
        parser.add_argument("--chunk-users", type=int, default=5000, help="Users written per transaction.")
        parser.add_argument("--seed", type=int, default=1, help="Random seed of who does what when (event ids are always new).")
        parser.add_argument("--prefix", default="demo", help="Usernames are PREFIX0000001, PREFIX0000002, ...")

    def handle(self, *args, **options) -> None:
        if not TaskConfig.all_objects.exists():
            call_command("demo_setup", stdout=self.stdout)
        operator, _ = get_user_model().objects.get_or_create(
            username=OPERATOR, defaults={"password": "!", "is_staff": True, "first_name": "Seed", "last_name": "operator"}
        )
        plan = SeedPlan(
            users=options["users"],
            entries=options["entries"],
            days=options["days"],
            adjustment_share=options["adjustments"],
            chunk_users=options["chunk_users"],
            seed=options["seed"],
            username_prefix=options["prefix"],
        )
        started = time.perf_counter()
        try:
            report = demo_data_seed(plan=plan, operator_id=operator.pk, progress=lambda line: self.stdout.write(f"  {line}"))
        except SeedError as exc:
            raise CommandError(str(exc)) from None
        elapsed = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {report.users} users, {report.accounts} accounts, {report.completions} completions, "
                f"{report.progress_rows} progress rows, {report.entries} ledger entries, {report.adjustments} posted "
                f"and {report.pending_adjustments} pending adjustments in {elapsed:.1f} s."
            )
        )
        tables = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report.per_table_s.items())
        self.stdout.write(f"Writing: {tables}. Check the ledger with: manage.py verify_ledger")
