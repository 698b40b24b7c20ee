"""One amount moves at most POINTS_MAX points (rules, per-object points, adjustments): refused by model
validation with a message, and by the database for a write that skips validation."""

import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.core.points import POINTS_MAX
from apps.ledger.models import Adjustment
from apps.rules.models import ScoreRule, ScoreRuleObjectPoints
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rule():
    TaskConfigFactory(task_type="post")
    return ScoreRuleFactory(task_type="post", score_type="post-each", status="editing", points=5)


def test_a_rule_up_to_the_bound_is_fine_and_beyond_it_is_refused(rule):
    rule.points = POINTS_MAX
    rule.full_clean()
    rule.points = POINTS_MAX + 1
    with pytest.raises(ValidationError) as refused:
        rule.full_clean()
    assert refused.value.message_dict["points"] == [f"At most {POINTS_MAX} points in one amount (a bigger one is surely a typo)."]


def test_per_object_points_are_bounded(rule):
    amount = ScoreRuleObjectPoints(rule=rule, business_id="42", points=POINTS_MAX + 1)
    with pytest.raises(ValidationError) as refused:
        amount.full_clean()
    assert "points" in refused.value.message_dict


@pytest.mark.parametrize("amount", [POINTS_MAX + 1, -POINTS_MAX - 1])
def test_an_adjustment_is_bounded_either_way(amount):
    user = UserFactory()
    adjustment = Adjustment(user=user, amount=amount, reason="typo", requested_by=user, request_token=uuid.uuid4())
    with pytest.raises(ValidationError) as refused:
        adjustment.full_clean()
    assert "amount" in refused.value.message_dict


def test_the_database_refuses_what_skips_validation(rule):
    user = UserFactory()
    writes = [
        lambda: ScoreRule.objects.filter(pk=rule.pk).update(points=POINTS_MAX + 1),
        lambda: ScoreRuleObjectPoints.objects.create(rule=rule, business_id="42", points=POINTS_MAX + 1),
        lambda: Adjustment.objects.create(
            user=user, amount=-(POINTS_MAX + 1), reason="typo", requested_by=user, request_token=uuid.uuid4()
        ),
    ]
    for write in writes:
        with pytest.raises(IntegrityError), transaction.atomic():
            write()
    assert ScoreRule.objects.get(pk=rule.pk).points == 5
