"""Progress in a user's words, for each kind of rule (apps/rules/progress_text.py)."""

import pytest
from django.utils import translation

from apps.rules.progress_text import ProgressFacts, progress_percent, progress_summary


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def facts(**values) -> ProgressFacts:
    return ProgressFacts(**{"kind": "count", "period": "day", "required": 1, "points": 10, "progress": 0, **values})


class TestOncePerTimeWithALimit:
    """N = 1 and an award limit per period: the awards against the limit."""

    def test_part_way(self):
        row = facts(progress=2, awards=2, award_limit=3)
        assert progress_summary(row) == "2 of 3 today"
        assert progress_percent(row) == 67

    def test_limit_reached_even_when_more_completions_counted(self):
        # The "4 / 1": four sign-ins counted, three awarded, the limit is three.
        row = facts(progress=4, awards=3, award_limit=3)
        assert progress_summary(row) == "3 of 3 today — limit reached"
        assert progress_percent(row) == 100

    @pytest.mark.parametrize(("period", "when"), [("week", "this week"), ("month", "this month"), ("year", "this year")])
    def test_each_period_says_its_own_name(self, period, when):
        assert progress_summary(facts(period=period, progress=1, awards=1, award_limit=2)) == f"1 of 2 {when}"

    def test_lifetime_has_no_period_phrase(self):
        assert progress_summary(facts(period="none", progress=1, awards=1, award_limit=1)) == "1 of 1 — limit reached"
        assert progress_summary(facts(period="none", award_limit=1)) == "0 of 1"


class TestOncePerTimeWithoutALimit:
    def test_nothing_yet(self):
        assert progress_summary(facts()) == "not yet today"
        assert progress_summary(facts(period="none")) == "not yet"
        assert progress_percent(facts()) == 0

    def test_times_done(self):
        assert progress_summary(facts(progress=1, awards=1)) == "done 1 time today"
        assert progress_summary(facts(progress=4, awards=4, period="week")) == "done 4 times this week"
        assert progress_percent(facts(progress=4, awards=4)) == 100


class TestEveryN:
    def test_toward_the_next_award(self):
        row = facts(required=3, progress=2)
        assert progress_summary(row) == "2 of 3 today · 1 more to earn 10 points"
        assert progress_percent(row) == 67

    def test_right_at_a_multiple_the_award_is_earned(self):
        row = facts(required=3, progress=3, awards=1)
        assert progress_summary(row) == "3 of 3 today — earned 10 points"
        assert progress_percent(row) == 100

    def test_the_next_round_starts_again(self):
        assert progress_summary(facts(required=3, progress=4, awards=1)) == "1 of 3 today · 2 more to earn 10 points"

    def test_with_a_limit_the_awards_are_counted_too(self):
        row = facts(required=3, progress=4, awards=1, award_limit=2)
        assert progress_summary(row) == "1 of 3 today · 2 more to earn 10 points · 1 of 2 awards today"

    def test_limit_of_awards_reached(self):
        row = facts(required=3, progress=7, awards=2, award_limit=2)
        assert progress_summary(row) == "2 of 2 awards today — limit reached"
        assert progress_percent(row) == 100

    def test_lifetime(self):
        assert progress_summary(facts(period="none", required=10, progress=7)) == "7 of 10 · 3 more to earn 10 points"


class TestStreak:
    def test_no_streak_yet(self):
        row = facts(kind="streak", required=7)
        assert progress_summary(row) == "no streak yet · not yet today · 7 more days to earn 10 points"
        assert progress_percent(row) == 0

    def test_a_streak_that_counted_today(self):
        row = facts(kind="streak", required=7, progress=4, counted_now=True)
        assert progress_summary(row) == "streak: 4 days · 3 more days to earn 10 points"
        assert progress_percent(row) == 57

    def test_a_streak_still_alive_from_yesterday(self):
        assert progress_summary(facts(kind="streak", required=7, progress=1)) == (
            "streak: 1 day · not yet today · 6 more days to earn 10 points"
        )

    def test_weeks_and_the_award(self):
        row = facts(kind="streak", period="week", required=4, progress=4, counted_now=True)
        assert progress_summary(row) == "streak: 4 weeks · earned 10 points"
        assert progress_summary(facts(kind="streak", period="month", required=3, progress=2)) == (
            "streak: 2 months · not yet this month · 1 more month to earn 10 points"
        )

    def test_every_period_awards(self):
        assert progress_summary(facts(kind="streak", required=1, progress=3, counted_now=True)) == "streak: 3 days"


class TestRecipientCap:
    def test_places_left_are_said(self):
        assert progress_summary(facts(period="none", award_limit=1, places_left=12)) == "0 of 1 · 12 places left"
        assert progress_summary(facts(period="none", award_limit=1, places_left=1)) == "0 of 1 · 1 place left"

    def test_no_places_left(self):
        assert progress_summary(facts(period="none", award_limit=1, places_left=0)) == (
            "no places left: every recipient place of this rule is taken"
        )


def test_chinese_reads_without_english_words():
    with translation.override("zh-hans"):
        text = progress_summary(facts(progress=4, awards=3, award_limit=3))
    assert "limit" not in text and "today" not in text and "3" in text


@pytest.mark.django_db
class TestFromTheDatabase:
    """`current_progress_for` hands the wording what it needs: awards, the limit, and the places of a capped rule."""

    def test_a_capped_rule_says_its_places_until_the_user_has_one(self):
        from apps.rules.models import RuleRecipient
        from apps.rules.selectors.rules import current_progress_for
        from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

        TaskConfigFactory(task_type="post")
        rule = ScoreRuleFactory(
            task_type="post", score_type="first-post", statistical_period="none", award_limit_per_period=1, number_limit_all=100
        )
        type(rule).objects.filter(pk=rule.pk).update(recipients_count=88)
        alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
        RuleRecipient.objects.create(rule=rule, user=bob)
        [mine] = current_progress_for(user_id=alice.pk)
        assert mine.summary == "0 of 1 · 12 places left"
        [bobs] = current_progress_for(user_id=bob.pk)
        assert "places" not in bobs.summary
