"""`manage.py export_rules --resource tasks|rules|object-points|items FILE`."""

from django.core.management.base import BaseCommand, CommandError

from apps.core.sheets import SheetError
from apps.rules.services.sheets import RESOURCES, sheet_export


class Command(BaseCommand):
    help = "Export a rule or item sheet as CSV, XLSX or JSON (by the file's extension)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")
        parser.add_argument("--resource", choices=sorted(RESOURCES), default="rules")

    def handle(self, *args, file: str, resource: str, **options) -> None:
        try:
            rows = sheet_export(resource=resource, path=file)
        except (SheetError, OSError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"{resource}: {rows} row(s) written to {file}"))
