"""`manage.py seed_demo_data`: a consistent data set in bulk (COPY on PostgreSQL, INSERT on SQLite)."""

from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Count, Max, Sum

from apps.ledger.models import Account, Adjustment, ScoreRecord
from apps.ledger.point_types import default_point_type_id
from apps.ledger.selectors.ledger import ledger_problems
from apps.rules.models import CountedCompletion, ScoreRule, UserScoreInfo
from apps.tasks.models import UserTaskRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_rules():
    call_command("loaddata", str(settings.BASE_DIR / "fixtures" / "demo.json"), verbosity=0)


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo_data", *args, stdout=out)
    return out.getvalue()


def test_small_data_set_is_consistent_and_counted_right(demo_rules):
    output = seed("--users", "50", "--entries", "500", "--days", "20")
    assert "Seeded 50 users, 50 accounts" in output and "500 ledger entries" in output

    assert ledger_problems() == []
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    assert "Ledger OK" in out.getvalue()

    users = get_user_model().objects.filter(username__startswith="demo")
    assert users.count() == 50
    assert Account.objects.filter(user__in=users).count() == 50
    assert ScoreRecord.objects.count() == 500
    assert Account.objects.aggregate(n=Sum("last_seq"))["n"] == 500
    for account in Account.objects.annotate(n=Count("entries"), top=Max("entries__seq"), total=Sum("entries__trade_amount")):
        assert account.last_seq == account.n == (account.top or 0)
        assert account.balance == (account.total or 0) >= 0

    awards = ScoreRecord.objects.filter(kind="award")
    adjustments = ScoreRecord.objects.filter(kind="adjustment")
    assert adjustments.count() == 5 == Adjustment.objects.filter(status="posted", entry__isnull=False).count()
    assert Adjustment.objects.filter(status="pending", entry__isnull=True).count() == 1
    # Each names its point type (the default one), as the admin's requests do.
    assert set(Adjustment.objects.values_list("point_type_id", flat=True)) == {default_point_type_id()}
    history = getattr(Adjustment, "history", None)  # kept by django-simple-history where the ledger enables it
    if history is not None:
        assert history.filter(history_type="+").count() == Adjustment.objects.count()
    # Every award has its own completion, counted once in a progress row of its rule and period.
    assert awards.count() == 495 == UserTaskRecord.objects.count() == CountedCompletion.objects.count()
    assert awards.values("completion_id").distinct().count() == 495
    assert UserScoreInfo.objects.aggregate(n=Sum("achievement_amount_now"))["n"] == 495
    assert UserScoreInfo.objects.aggregate(n=Sum("awards_in_period"))["n"] == 495
    # Only uncapped rules award, within their per-period limits.
    assert not awards.filter(rule__number_limit_all__isnull=False).exists()
    for rule in ScoreRule.objects.filter(award_limit_per_period__isnull=False):
        assert not UserScoreInfo.objects.filter(achievement_type=rule, awards_in_period__gt=rule.award_limit_per_period).exists()
    # Written in time order, as the pipeline writes: ids follow created_at.
    times = list(ScoreRecord.objects.order_by("id").values_list("created_at", flat=True))
    assert times == sorted(times)
    times = list(UserTaskRecord.objects.order_by("id").values_list("created_at", flat=True))
    assert times == sorted(times)
    # The award's amount is the rule's, and the completion's decision says so.
    entry = awards.select_related("rule", "completion").first()
    assert entry.trade_amount == entry.rule.points
    assert entry.completion.decisions[0]["reason"] == "awarded" and entry.completion.decisions[0]["rule"] == entry.rule.score_type


def test_a_second_run_adds_to_what_is_there(demo_rules):
    seed("--users", "20", "--entries", "100")
    seed("--users", "10", "--entries", "50", "--seed", "2")
    assert get_user_model().objects.filter(username__startswith="demo").count() == 30
    assert ScoreRecord.objects.count() == 150
    assert ledger_problems() == []


def test_without_rules_that_can_award_it_says_so():
    from tests.factories import TaskConfigFactory

    TaskConfigFactory(task_type="post")
    with pytest.raises(CommandError, match="No active count rule"):
        seed("--users", "5", "--entries", "10")
