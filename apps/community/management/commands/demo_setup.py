"""Prepare the demo: rules and task configs, the operator `admin`, and the users alice and bob.

Safe to run again: fixtures load only into an empty configuration (so an operator's changes are
never overwritten), and existing accounts are left as they are.
"""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.tasks.models import TaskConfig

DEMO_PASSWORD = "demo12345"  # noqa: S105 - the demo users' published password
FIXTURE = settings.BASE_DIR / "fixtures" / "demo.json"


class Command(BaseCommand):
    help = "Load the demo rules and create the demo accounts (idempotent)."

    def handle(self, *args, **options) -> None:
        if TaskConfig.all_objects.exists():
            self.stdout.write("Task configs already present: demo fixtures not loaded again.")
        else:
            call_command("loaddata", str(FIXTURE), verbosity=0)
            call_command("populate_history", "tasks.TaskConfig", "rules.ScoreRule", verbosity=0)
            self.stdout.write(self.style.SUCCESS(f"Loaded demo task configs and rules from {FIXTURE.name}."))

        users = get_user_model()
        password_file = settings.VAR_DIR / "admin-password.txt"
        if not users.objects.filter(username="admin").exists():
            password = secrets.token_urlsafe(12)
            users.objects.create_superuser("admin", "admin@example.com", password)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        if password_file.exists():
            admin_note = f"password {password_file.read_text().strip()} (set on first run, kept in {password_file})"
        else:
            admin_note = "existing account, password unchanged"
        for name in ("alice", "bob"):
            if not users.objects.filter(username=name).exists():
                users.objects.create_user(name, f"{name}@example.com", DEMO_PASSWORD)

        self.stdout.write(self.style.SUCCESS("Operator: admin, " + admin_note))
        self.stdout.write(self.style.SUCCESS(f"Site users: alice and bob, password {DEMO_PASSWORD}"))
