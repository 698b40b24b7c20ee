"""`manage.py demo_setup`: the demo's two operators, so every two-person flow can be tried, and its rules' words."""

import io
import json
import uuid

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import translation

from apps.community.demo_texts import DEMO_DESCRIPTIONS
from apps.ledger.models import Adjustment
from apps.ledger.services.adjustments import adjustment_approve, adjustment_request
from apps.rules.models import ScoreRule
from tests.ledger.conftest import give_points

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(settings, tmp_path):
    settings.VAR_DIR = tmp_path

    def run() -> str:
        out = io.StringIO()
        call_command("demo_setup", stdout=out)
        return out.getvalue()

    return run


def test_creates_admin_and_approver_and_prints_both_passwords(setup, tmp_path):
    out = setup()
    approver = get_user_model().objects.get(username="approver")
    password = (tmp_path / "approver-password.txt").read_text().strip()
    assert f"approver, password {password}" in out
    assert "Operator: admin, password " in out
    assert approver.check_password(password) and approver.is_staff and not approver.is_superuser
    assert set(approver.groups.values_list("name", flat=True)) == {"rule approvers", "ledger operators"}
    assert approver.has_perm("ledger.approve_adjustment") and approver.has_perm("rules.activate_scorerule")

    again = setup()
    assert f"approver, password {password}" in again
    assert get_user_model().objects.filter(username="approver").count() == 1


def test_the_approver_approves_a_large_adjustment_admin_requested(setup, settings):
    setup()
    settings.JIFEN_ADJUSTMENT_APPROVAL_ABOVE = 100
    users = get_user_model().objects
    alice, admin, approver = users.get(username="alice"), users.get(username="admin"), users.get(username="approver")
    give_points(alice, 1)
    requested = adjustment_request(user_id=alice.pk, amount=5000, reason="Prize", request_token=uuid.uuid4(), actor=admin)
    assert requested.adjustment.status == Adjustment.Status.PENDING
    decided = adjustment_approve(adjustment=requested.adjustment, actor=approver)
    assert decided.status == Adjustment.Status.POSTED


def test_the_demo_rules_descriptions_read_in_both_languages(setup):
    setup()
    fixture = json.loads((settings.BASE_DIR / "fixtures" / "demo.json").read_text())
    described = {item["fields"]["score_desc"] for item in fixture if item["model"] == "rules.scorerule"}
    assert described == set(DEMO_DESCRIPTIONS)
    assert set(ScoreRule.objects.values_list("score_desc", flat=True)) == described
    with translation.override("zh-hans"):
        chinese = {translation.gettext(text) for text in DEMO_DESCRIPTIONS}
    assert not chinese & described, "every demo description has its Chinese"


def test_the_demo_has_coins_to_spend_and_experience_with_five_levels(setup):
    from apps.ledger.models import PointType
    from apps.ledger.point_types import default_point_type_id

    setup()
    coins = PointType.objects.get(pk=default_point_type_id())
    assert (coins.code, coins.spendable, coins.expiry) == ("coins", True, "year_end")
    exp = PointType.objects.get(code="exp")
    assert (exp.spendable, exp.expiry) == (False, "never")
    assert list(exp.levels.order_by("threshold").values_list("threshold", flat=True)) == [
        0,
        50,
        500,
        2000,
        10000,
    ]  # 入门 in a week of sign-ins
    with translation.override("zh-hans"):
        assert (str(coins), str(exp)) == ("积分", "经验")
        assert [str(level) for level in exp.levels.order_by("threshold")] == ["新手", "入门", "熟练", "高手", "大师"]
    # Both have history from the start, as the rules do.
    assert coins.history.exists() and exp.levels.first().history.exists()
    exp_rules = ScoreRule.objects.filter(point_type=exp, status="active")
    assert set(exp_rules.values_list("task_type", flat=True)) == {"sign-in", "post", "comment"}
    assert ScoreRule.objects.filter(point_type=coins, badge__isnull=True).count() == 6
    assert ScoreRule.objects.filter(point_type=coins, badge__isnull=False, points=0).count() == 3  # the badges' rules


def test_signing_in_earns_coins_and_experience(setup):
    from django.utils import timezone

    from apps.ledger.selectors.levels import standings_of
    from apps.tracking.events import Event
    from apps.tracking.services.pipeline import event_process

    setup()
    alice = get_user_model().objects.get(username="alice")
    event_process(event=Event(event_id=uuid.uuid4(), user_id=alice.pk, task_type="sign-in", occurred_at=timezone.now()))
    standings = {s.point_type.code: s for s in standings_of(user_id=alice.pk)}
    assert (standings["coins"].balance, standings["exp"].balance) == (1, 10)
    assert str(standings["exp"].level) == "Newcomer" and standings["exp"].to_next == 40
    call_command("verify_ledger", stdout=io.StringIO())


def test_the_demo_has_three_badges_with_their_images_and_rules(setup, settings, tmp_path):
    from apps.community.demo_texts import DEMO_BADGES
    from apps.rules.models import Badge

    settings.MEDIA_ROOT = tmp_path / "media"
    out = setup()
    assert "Copied the demo badges' images" in out
    badges = {badge.code: badge for badge in Badge.objects.all()}
    assert set(badges) == {"streak-7", "first-post", "commenter"}
    for badge in badges.values():
        image = settings.MEDIA_ROOT / badge.image.name
        assert image.read_bytes().startswith(b"<svg") and badge.image.url == f"/media/badges/{image.name}"
        assert badge.name in DEMO_BADGES and badge.description in DEMO_BADGES
        rule = ScoreRule.objects.get(badge=badge)
        assert rule.status == "active" and rule.points == 0
    assert ScoreRule.objects.get(badge=badges["streak-7"]).kind == "streak"
    with translation.override("zh-hans"):
        assert [translation.gettext(badges[c].name) for c in ("streak-7", "first-post", "commenter")] == [
            "签到达人",
            "首帖",
            "评论之星",
        ]
    assert "Copied" not in setup()  # run again: the images are there already
