"""Prepare the demo: point types, levels, rules and task configs, the operators `admin` and `approver`, and alice and bob.

The demo's default point type is `coins` (积分: spendable, expiring at the end of the year after
earning); `exp` (经验: never spent, never expiring) has five levels, and rules award it beside
coins (signing in, posting and commenting earn both).

`admin` is a superuser; `approver` is an operator in the rule approvers and ledger operators
groups, so that every two-person step can be tried: a rule admin submits is activated by the
approver, an adjustment above the approval threshold that admin requests is approved by them.

Three rules grant the demo's badges (签到达人 for signing in seven days in a row, 首帖 for a
first post, 评论之星 for ten comments), with 0 points. Their images, drawn for the project, ship
as SVG files in fixtures/badges/ and are copied into the media directory (JIFEN_MEDIA_DIR) under
badges/, where the fixture's Badge rows point; an operator's own uploads are raster images
(Badge.image's validator), the shipped SVGs are the demo's own, served as files like uploads.

Safe to run again: fixtures load only into an empty configuration (so an operator's changes are
never overwritten), and existing accounts are left as they are.
"""

import secrets
import shutil
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.tasks.models import TaskConfig

DEMO_PASSWORD = "demo12345"  # noqa: S105 - the demo users' published password
FIXTURE = settings.BASE_DIR / "fixtures" / "demo.json"
BADGE_IMAGES = settings.BASE_DIR / "fixtures" / "badges"
APPROVER_GROUPS = ("rule approvers", "ledger operators")


def badge_images_install() -> int:
    """Copy the demo badges' images into the media directory where missing; return how many were copied."""
    target = settings.MEDIA_ROOT / "badges"
    target.mkdir(parents=True, exist_ok=True)
    copied = 0
    for image in sorted(BADGE_IMAGES.glob("*.svg")):
        if not (target / image.name).exists():
            shutil.copyfile(image, target / image.name)
            copied += 1
    return copied


def _create_admin(username: str, password: str) -> None:
    get_user_model().objects.create_superuser(username, f"{username}@example.com", password)


def _create_approver(username: str, password: str) -> None:
    user = get_user_model().objects.create_user(username, f"{username}@example.com", password, is_staff=True)
    user.groups.set(Group.objects.filter(name__in=APPROVER_GROUPS))


class Command(BaseCommand):
    help = "Load the demo rules and create the demo accounts (idempotent)."

    def handle(self, *args, **options) -> None:
        if TaskConfig.all_objects.exists():
            self.stdout.write("Task configs already present: demo fixtures not loaded again.")
        else:
            call_command("loaddata", str(FIXTURE), verbosity=0)
            call_command(
                "populate_history",
                "ledger.PointType",
                "ledger.Level",
                "tasks.TaskConfig",
                "rules.Badge",
                "rules.ScoreRule",
                verbosity=0,
            )
            self.stdout.write(
                self.style.SUCCESS(f"Loaded demo point types, levels, task configs, badges and rules from {FIXTURE.name}.")
            )
        if badge_images_install():
            self.stdout.write(self.style.SUCCESS(f"Copied the demo badges' images to {settings.MEDIA_ROOT / 'badges'}."))

        admin_note = self._operator("admin", _create_admin)
        approver_note = self._operator("approver", _create_approver)
        users = get_user_model()
        for name in ("alice", "bob"):
            if not users.objects.filter(username=name).exists():
                users.objects.create_user(name, f"{name}@example.com", DEMO_PASSWORD)

        self.stdout.write(self.style.SUCCESS("Operator: admin, " + admin_note))
        self.stdout.write(self.style.SUCCESS("Second operator (rule approver and ledger operator): approver, " + approver_note))
        self.stdout.write(self.style.SUCCESS(f"Site users: alice and bob, password {DEMO_PASSWORD}"))

    @staticmethod
    def _operator(username: str, create: Callable[[str, str], None]) -> str:
        """Create the operator with a new random password on first run; say what their password is."""
        password_file = settings.VAR_DIR / f"{username}-password.txt"
        if not get_user_model().objects.filter(username=username).exists():
            password = secrets.token_urlsafe(12)
            create(username, password)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        if password_file.exists():
            return f"password {password_file.read_text().strip()} (set on first run, kept in {password_file})"
        return "existing account, password unchanged"
