"""Every date people see is in settings.TIME_ZONE: the helper (apps/core/clock.py) and the rule that all go through it."""

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.core import clock
from tests.factories import UserFactory
from tests.ledger.conftest import give_points

ROOT = Path(__file__).resolve().parents[1]

# 23:30 UTC on Nov 30 is 07:30 on Dec 1 in Shanghai: a UTC date would be a day behind.
LATE_UTC = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)

# Where the unsafe forms may stay, and why.
ALLOWED = {
    "apps/core/clock.py": "the helper itself",
    "apps/core/periods.py": "the calendar periods, computed in the zone they are given",
    "config/procfile.py": "`make run`'s console prefix: the developer's terminal clock, before Django is set up",
    "apps/tracking/selectors.py": "the health check's checked_at, a machine-read UTC instant ending in Z (docs/production.md)",
}


def unsafe_time_uses(source: str) -> list[str]:
    """Lines that turn an instant into a date or text without saying in which zone, as "line: what"."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name, owner = node.func.attr, node.func.value
            owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            if name == "date" and not node.args and not node.keywords:
                found.append(f"{node.lineno}: .date() (use clock.local_date)")
            elif name == "strftime":
                found.append(f"{node.lineno}: .strftime() (use clock.local_text)")
            elif name in ("utcnow", "utcfromtimestamp"):
                found.append(f"{node.lineno}: datetime.{name}() (use timezone.now / clock)")
            elif name == "today" and owner_name in ("date", "datetime"):
                found.append(f"{node.lineno}: {owner_name}.today() (use clock.local_today)")
            elif name == "now" and owner_name == "datetime" and not node.args and not node.keywords:
                found.append(f"{node.lineno}: datetime.now() without a zone (use clock.local_now)")
            elif name in ("localtime", "gmtime") and owner_name == "time":
                found.append(f"{node.lineno}: time.{name}() (use clock)")
        elif isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            parts = ast.walk(node.format_spec)
            spec = "".join(part.value for part in parts if isinstance(part, ast.Constant) and isinstance(part.value, str))
            if "%" in spec:
                found.append(f"{node.lineno}: f-string time format {spec!r} (use clock.local_text)")
    return found


def test_the_check_sees_each_unsafe_form():
    source = (
        "a = moment.date()\n"
        "b = timezone.now().strftime('%Y')\n"
        "c = datetime.utcnow()\n"
        "d = date.today()\n"
        "e = f'{now:%Y%m%d}'\n"
        "f = datetime.now()\n"
        "g = f'{n:06d}'\n"
        "h = datetime.now(UTC)\n"
    )
    assert sorted(int(line.split(":")[0]) for line in unsafe_time_uses(source)) == [1, 2, 3, 4, 5, 6]


def test_no_code_makes_a_date_or_time_text_outside_the_clock_helper():
    found = []
    for package in ("apps", "config"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "migrations" in path.parts or relative in ALLOWED:
                continue
            found += [f"{relative}:{use}" for use in unsafe_time_uses(path.read_text())]
    assert found == [], "route these through apps/core/clock.py:\n" + "\n".join(found)


class TestLocalDates:
    def test_late_utc_is_the_next_local_day(self, settings, monkeypatch):
        settings.TIME_ZONE = "Asia/Shanghai"
        monkeypatch.setattr(timezone, "now", lambda: LATE_UTC)
        assert clock.local_today().isoformat() == "2026-12-01"
        assert clock.file_stamp() == "2026-12-01"
        assert clock.serial_stamp(LATE_UTC).startswith("20261201073000")
        assert clock.local_text(LATE_UTC) == "2026-12-01 07:30"

    def test_a_naive_time_is_taken_as_local(self, settings):
        settings.TIME_ZONE = "Asia/Shanghai"
        assert clock.local_text(datetime(2026, 12, 1, 7, 30)) == "2026-12-01 07:30"


@pytest.mark.django_db
class TestSerialNumbersAndFileNames:
    """At 23:30 UTC in Asia/Shanghai the site's date is already tomorrow's: so are serial numbers and file names."""

    @pytest.fixture
    def late(self, settings, monkeypatch):
        settings.TIME_ZONE = "Asia/Shanghai"
        monkeypatch.setattr(timezone, "now", lambda: LATE_UTC)

    def test_a_serial_number_carries_the_local_date(self, late):
        entry = give_points(UserFactory(username="alice"), 5)
        assert entry.serial_number.startswith("20261201073000"), entry.serial_number

    def test_an_export_file_name_carries_the_local_date(self, late, client, django_user_model):
        client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "x"))
        give_points(UserFactory(username="alice"), 5)
        url = reverse("admin:ledger_scorerecord_export")
        columns = re.findall(r'name="(scorerecordresource_\w+)"', client.get(url).content.decode())
        response = client.post(url, {"format": "0", "resource": "0", **dict.fromkeys(columns, "on")})
        assert response.status_code == 200
        assert 'filename="ScoreRecord-2026-12-01.csv"' in response["Content-Disposition"]

    def test_a_rule_sheet_file_name_carries_the_local_date(self, late, client, django_user_model):
        client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "x"))
        url = reverse("admin:rules_scorerule_export")
        columns = re.findall(r'name="(scoreruleresource_\w+)"', client.get(url).content.decode())
        response = client.post(url, {"format": "0", "resource": "0", **dict.fromkeys(columns, "on")})
        assert response.status_code == 200
        assert 'filename="ScoreRule-2026-12-01.csv"' in response["Content-Disposition"]


@pytest.mark.django_db
def test_a_lifetime_rules_period_shows_as_since_the_start_not_1970(client, django_user_model):
    from apps.core.periods import LIFETIME_START
    from apps.rules.models import UserScoreInfo
    from tests.factories import ScoreRuleFactory, TaskConfigFactory

    TaskConfigFactory(task_type="post")
    rule = ScoreRuleFactory(task_type="post", score_type="first-post", statistical_period="none")
    alice = UserFactory(username="alice")
    row = UserScoreInfo.objects.create(user=alice, achievement_type=rule, period_start=LIFETIME_START, required_number=1)
    assert clock.period_start_text(LIFETIME_START) == "since the start"
    assert "1970" not in str(row)
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "x"))
    listed = client.get(reverse("admin:rules_userscoreinfo_changelist")).content.decode()
    shown = client.get(reverse("admin:rules_userscoreinfo_change", args=[row.pk])).content.decode()
    # The list leaves the period's start to each row's page (it fits 1280 px with the columns that matter).
    assert "1970" not in listed
    assert "since the start" in shown and "1970" not in shown
