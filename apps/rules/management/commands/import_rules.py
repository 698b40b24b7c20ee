"""`manage.py import_rules --resource tasks|rules|object-points|items FILE [--dry-run] [--user USERNAME]`."""

from django.core.management.base import BaseCommand, CommandError

from apps.core.sheets import SheetError
from apps.rules.management.rule_args import USER_HELP, operator_by_username
from apps.rules.services.sheets import RESOURCES, sheet_import


class Command(BaseCommand):
    help = (
        "Import a rule or item sheet (CSV, XLSX or JSON, by extension). Any bad row: nothing is applied. Rows that change a "
        "status (activate, retire, put in use, deprecate) need --user naming an operator allowed to do that."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")
        parser.add_argument("--resource", choices=sorted(RESOURCES), default="rules")
        parser.add_argument("--dry-run", action="store_true", help="validate and report only")
        parser.add_argument("--user", help=USER_HELP + " (without it, the sheet may not change any status)")

    def handle(self, *args, file: str, resource: str, dry_run: bool, user: str | None, **options) -> None:
        actor = operator_by_username(user)
        try:
            report = sheet_import(resource=resource, path=file, dry_run=dry_run, actor=actor)
        except SheetError as exc:
            raise CommandError(str(exc)) from None
        counts = ", ".join(f"{kind} {count}" for kind, count in sorted(report.counts.items())) or "no rows"
        if report.errors:
            for error in report.errors:
                self.stderr.write(error)
            raise CommandError(f"{len(report.errors)} error(s): nothing was applied ({counts})")
        verb = "would apply" if dry_run else "applied"
        self.stdout.write(self.style.SUCCESS(f"{resource}: {verb}: {counts}"))
