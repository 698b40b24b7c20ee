"""The rule engine (SPEC §4): what one completion means for one rule, decided without a database."""

import json
from dataclasses import FrozenInstanceError, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from apps.core.periods import DAY, LIFETIME_START, MONTH, NONE, WEEK, YEAR
from apps.rules.engine import COUNT, STREAK, Completion, Decision, Progress, Reason, RuleSpec, evaluate

TZ = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
NOON = datetime(2026, 3, 10, 12, tzinfo=TZ)  # a Tuesday
TODAY = datetime(2026, 3, 10, tzinfo=TZ)


def days_before(n: int, start: datetime = TODAY) -> datetime:
    return start - timedelta(days=n)


def count_rule(**fields) -> RuleSpec:
    """Each sign-in: 1 point (count, day, N=1), adjusted by `fields`."""
    return RuleSpec(**{"id": 7, "code": "sign_in", "kind": COUNT, "period": DAY, "required": 1, "points": 1, **fields})


def streak_rule(**fields) -> RuleSpec:
    """Ten consecutive daily sign-ins: 2 extra points (streak, day, N=10), adjusted by `fields`."""
    return RuleSpec(**{"id": 8, "code": "sign_in_streak", "kind": STREAK, "period": DAY, "required": 10, "points": 2, **fields})


def decide(rule: RuleSpec, *, at: datetime = NOON, business_id: str = "", tz: ZoneInfo = TZ, **progress) -> Decision:
    return evaluate(rule, Completion(occurred_at=at, business_id=business_id), Progress(**progress), tz)


def assert_no_award(decision: Decision) -> None:
    assert not decision.awarded
    assert decision.points == 0
    assert decision.takes_recipient_place is False


class TestApplicability:
    @pytest.mark.parametrize("rule", [count_rule(active=False), streak_rule(active=False)], ids=["count", "streak"])
    def test_a_rule_that_is_not_active_neither_counts_nor_awards(self, rule):
        decision = decide(rule)

        assert decision.reason is Reason.NOT_ACTIVE
        assert decision.counted is False
        assert_no_award(decision)

    def test_a_rule_that_is_not_active_says_so_even_outside_its_window(self):
        rule = count_rule(active=False, end_time=NOON - timedelta(days=1))

        assert decide(rule).reason is Reason.NOT_ACTIVE

    def test_without_a_window_a_rule_applies_at_any_time(self):
        assert decide(count_rule(), at=datetime(1999, 1, 1, tzinfo=TZ)).awarded
        assert decide(count_rule(), at=datetime(2999, 1, 1, tzinfo=TZ)).awarded

    @pytest.mark.parametrize(
        ("at", "reason"),
        [
            (NOON - timedelta(microseconds=1), Reason.OUTSIDE_WINDOW),
            (NOON, Reason.AWARDED),
            (NOON + timedelta(hours=3), Reason.AWARDED),
            (NOON + timedelta(days=1) - timedelta(microseconds=1), Reason.AWARDED),
            (NOON + timedelta(days=1), Reason.OUTSIDE_WINDOW),
            (NOON + timedelta(days=30), Reason.OUTSIDE_WINDOW),
        ],
        ids=["before-start", "at-start", "inside", "last-instant", "at-end", "after-end"],
    )
    def test_the_window_includes_its_start_and_excludes_its_end(self, at, reason):
        rule = count_rule(start_time=NOON, end_time=NOON + timedelta(days=1))

        decision = decide(rule, at=at)

        assert decision.reason is reason
        assert decision.counted is (reason is Reason.AWARDED)

    def test_an_open_ended_window_has_only_a_start(self):
        rule = count_rule(start_time=NOON)

        assert decide(rule, at=NOON - timedelta(seconds=1)).reason is Reason.OUTSIDE_WINDOW
        assert decide(rule, at=NOON + timedelta(days=3650)).awarded

    def test_an_open_started_window_has_only_an_end(self):
        rule = count_rule(end_time=NOON)

        assert decide(rule, at=NOON - timedelta(days=3650)).awarded
        assert decide(rule, at=NOON).reason is Reason.OUTSIDE_WINDOW

    def test_outside_the_window_nothing_is_counted(self):
        rule = count_rule(required=3, end_time=NOON)

        decision = decide(rule, count=2)

        assert decision.counted is False
        assert_no_award(decision)

    def test_a_streak_outside_its_window_does_not_count_the_period(self):
        rule = streak_rule(start_time=NOON + timedelta(hours=1))

        decision = decide(rule, last_period_start=days_before(1), streak=9)

        assert decision.reason is Reason.OUTSIDE_WINDOW
        assert decision.counted is False

    def test_the_window_compares_instants_whatever_their_zone(self):
        # The window as read from the database (UTC) against an event stamped in local time.
        rule = count_rule(start_time=datetime(2026, 3, 10, 4, tzinfo=UTC), end_time=datetime(2026, 3, 10, 5, tzinfo=UTC))

        assert decide(rule, at=datetime(2026, 3, 10, 11, 59, tzinfo=TZ)).reason is Reason.OUTSIDE_WINDOW
        assert decide(rule, at=datetime(2026, 3, 10, 12, 0, tzinfo=TZ)).awarded
        assert decide(rule, at=datetime(2026, 3, 10, 13, 0, tzinfo=TZ)).reason is Reason.OUTSIDE_WINDOW

    def test_the_window_compares_instants_in_the_repeated_autumn_hour(self):
        end = datetime(2026, 11, 1, 1, 15, fold=1, tzinfo=NEW_YORK)  # second 01:15, 06:15 UTC
        at = datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK)  # first 01:30, 05:30 UTC: before the end
        assert at.astimezone(UTC) < end.astimezone(UTC)

        assert decide(count_rule(end_time=end), at=at, tz=NEW_YORK).awarded


class TestCountProgress:
    @pytest.mark.parametrize(
        ("count_before", "reason"),
        [
            (0, Reason.COUNTED),
            (1, Reason.COUNTED),
            (2, Reason.AWARDED),
            (3, Reason.COUNTED),
            (4, Reason.COUNTED),
            (5, Reason.AWARDED),
            (29, Reason.AWARDED),
        ],
    )
    def test_awards_each_time_the_count_reaches_a_multiple_of_n(self, count_before, reason):
        decision = decide(count_rule(required=3, points=5), count=count_before)

        assert decision.reason is reason
        assert decision.counted is True
        assert decision.progress == count_before + 1
        assert decision.points == (5 if reason is Reason.AWARDED else 0)

    def test_with_n_one_every_completion_awards(self):
        for count in range(5):
            assert decide(count_rule(), count=count).points == 1

    def test_a_run_of_completions_awards_at_n_2n_3n(self):
        rule = count_rule(required=3, points=5)
        count, awards, awarded_at = 0, 0, []
        for _ in range(10):
            decision = decide(rule, count=count, awards=awards)
            count = decision.progress
            if decision.awarded:
                awards += 1
                awarded_at.append(count)

        assert awarded_at == [3, 6, 9]
        assert count == 10

    def test_the_decision_carries_the_period_of_the_completion(self):
        decision = decide(count_rule(period=WEEK), at=NOON)

        assert decision.period_start == datetime(2026, 3, 9, tzinfo=TZ)
        assert decision.deadline == datetime(2026, 3, 16, tzinfo=TZ)
        assert (decision.rule_id, decision.rule_code) == (7, "sign_in")

    def test_a_late_completion_counts_in_its_own_past_period(self):
        # Progress describes the completion's period; the engine only has to place it there.
        decision = decide(count_rule(), at=NOON - timedelta(days=3), count=0)

        assert decision.awarded
        assert decision.period_start == days_before(3)
        assert decision.deadline == days_before(2)

    def test_the_none_period_never_ends(self):
        decision = decide(count_rule(period=NONE))

        assert decision.awarded
        assert decision.period_start == LIFETIME_START
        assert decision.deadline is None


class TestAwardLimitPerPeriod:
    def test_once_a_day_sign_in_awards_the_first_time_only(self):
        rule = count_rule(award_limit=1)

        first = decide(rule, count=0, awards=0)
        second = decide(rule, count=1, awards=1)

        assert first.awarded and first.points == 1
        assert second.reason is Reason.LIMIT_REACHED
        assert second.counted is True
        assert second.progress == 2
        assert_no_award(second)

    @pytest.mark.parametrize(("awards", "awarded"), [(0, True), (9, True), (10, False), (11, False)])
    def test_at_most_ten_posts_a_day_are_paid(self, awards, awarded):
        decision = decide(count_rule(points=5, award_limit=10), count=awards, awards=awards)

        assert decision.awarded is awarded
        assert decision.reason is (Reason.AWARDED if awarded else Reason.LIMIT_REACHED)
        assert decision.counted is True

    def test_a_day_of_twelve_posts_pays_ten(self):
        rule = count_rule(points=5, award_limit=10)
        count, awards, reasons = 0, 0, []
        for _ in range(12):
            decision = decide(rule, count=count, awards=awards)
            count, awards = decision.progress, awards + decision.awarded
            reasons.append(decision.reason)

        assert reasons == [Reason.AWARDED] * 10 + [Reason.LIMIT_REACHED] * 2
        assert count == 12

    def test_between_multiples_of_n_the_completion_is_just_counted(self):
        decision = decide(count_rule(required=2, award_limit=1), count=2, awards=1)

        assert decision.reason is Reason.COUNTED
        assert decision.progress == 3

    def test_the_limit_blocks_the_next_multiple_of_n(self):
        decision = decide(count_rule(required=2, award_limit=1), count=3, awards=1)

        assert decision.reason is Reason.LIMIT_REACHED
        assert decision.progress == 4

    def test_without_a_limit_awards_never_stop(self):
        assert decide(count_rule(award_limit=None), count=1000, awards=1000).awarded

    def test_the_limit_applies_to_streaks_too(self):
        decision = decide(streak_rule(required=1, award_limit=1), last_period_start=days_before(1), streak=4, awards=1)

        assert decision.reason is Reason.LIMIT_REACHED
        assert decision.counted is True
        assert decision.progress == 5
        assert_no_award(decision)


class TestRecipientCap:
    def test_a_new_recipient_takes_a_place_while_places_are_left(self):
        decision = decide(count_rule(recipient_cap=100), recipients=99)

        assert decision.awarded
        assert decision.takes_recipient_place is True

    @pytest.mark.parametrize("recipients", [100, 101])
    def test_no_award_for_a_new_user_once_the_cap_is_reached(self, recipients):
        decision = decide(count_rule(recipient_cap=100), recipients=recipients)

        assert decision.reason is Reason.CAP_REACHED
        assert decision.counted is True
        assert decision.progress == 1
        assert_no_award(decision)

    def test_an_existing_recipient_still_gets_awards_when_the_cap_is_reached(self):
        decision = decide(count_rule(recipient_cap=100), is_recipient=True, recipients=100, count=4, awards=4)

        assert decision.awarded
        assert decision.points == 1
        assert decision.takes_recipient_place is False

    def test_without_a_cap_no_place_is_taken(self):
        decision = decide(count_rule(recipient_cap=None), recipients=10_000)

        assert decision.awarded
        assert decision.takes_recipient_place is False

    def test_first_post_ever_ten_points_first_hundred_users(self):
        rule = count_rule(code="first_post", period=NONE, points=10, award_limit=1, recipient_cap=100)

        first = decide(rule, recipients=42)
        again = decide(rule, count=1, awards=1, is_recipient=True, recipients=43)
        late_comer = decide(rule, recipients=100)

        assert (first.reason, first.points, first.takes_recipient_place) == (Reason.AWARDED, 10, True)
        assert again.reason is Reason.LIMIT_REACHED
        assert late_comer.reason is Reason.CAP_REACHED

    def test_a_step_that_does_not_award_takes_no_place(self):
        decision = decide(count_rule(required=3, recipient_cap=1), count=0, recipients=1)

        assert decision.reason is Reason.COUNTED
        assert decision.takes_recipient_place is False

    def test_the_cap_applies_to_streaks_too(self):
        rule = streak_rule(recipient_cap=5)

        blocked = decide(rule, last_period_start=days_before(1), streak=9, recipients=5)
        paid = decide(rule, last_period_start=days_before(1), streak=9, recipients=4)

        assert blocked.reason is Reason.CAP_REACHED
        assert blocked.counted is True and blocked.progress == 10
        assert paid.awarded and paid.takes_recipient_place is True


class TestCanRepeat:
    def test_an_object_already_counted_is_not_counted_again(self):
        decision = decide(count_rule(can_repeat=False), business_id="post-1", count=3, awards=3, object_seen=True)

        assert decision.reason is Reason.DUPLICATE_OBJECT
        assert decision.counted is False
        assert decision.progress == 3
        assert_no_award(decision)

    def test_a_new_object_is_counted(self):
        decision = decide(count_rule(can_repeat=False), business_id="post-2", count=3, awards=3, object_seen=False)

        assert decision.awarded
        assert decision.progress == 4

    @pytest.mark.parametrize(("seen", "reason"), [(True, Reason.DUPLICATE_OBJECT), (False, Reason.AWARDED)])
    def test_the_empty_business_id_is_a_value_like_any_other(self, seen, reason):
        decision = decide(count_rule(can_repeat=False), business_id="", object_seen=seen)

        assert decision.reason is reason

    def test_with_can_repeat_the_same_object_counts_each_time(self):
        decision = decide(count_rule(can_repeat=True), business_id="post-1", count=3, object_seen=True)

        assert decision.awarded
        assert decision.progress == 4

    def test_the_duplicate_check_comes_before_the_limits(self):
        decision = decide(count_rule(can_repeat=False, award_limit=1, recipient_cap=1), object_seen=True, awards=1, recipients=1)

        assert decision.reason is Reason.DUPLICATE_OBJECT

    def test_can_repeat_does_not_apply_to_streaks(self):
        rule = streak_rule(required=1, can_repeat=False)

        decision = decide(rule, business_id="post-1", object_seen=True, last_period_start=days_before(1), streak=3)

        assert decision.awarded
        assert decision.progress == 4


class TestAmount:
    RULE = count_rule(code="share", points=2, object_points={"blog-42": 50, "": 7})

    @pytest.mark.parametrize(("business_id", "points"), [("blog-42", 50), ("blog-43", 2), ("", 7), ("BLOG-42", 2)])
    def test_an_object_can_have_its_own_amount(self, business_id, points):
        assert decide(self.RULE, business_id=business_id).points == points

    def test_without_object_amounts_the_rule_points_are_paid(self):
        assert decide(count_rule(points=3), business_id="blog-42").points == 3

    def test_the_completion_that_triggers_the_award_decides_the_amount(self):
        rule = replace(self.RULE, required=3)

        assert decide(rule, business_id="blog-42", count=1).points == 0
        assert decide(rule, business_id="blog-42", count=2).points == 50
        assert decide(rule, business_id="blog-1", count=5).points == 2

    def test_an_object_amount_is_not_paid_when_the_award_is_blocked(self):
        rule = replace(self.RULE, award_limit=1)

        assert decide(rule, business_id="blog-42", count=1, awards=1).points == 0

    def test_a_streak_award_is_paid_at_the_triggering_objects_amount(self):
        rule = streak_rule(required=2, object_points={"blog-42": 50})

        assert decide(rule, business_id="blog-42", last_period_start=days_before(1), streak=1).points == 50


class TestStreak:
    def test_a_first_completion_starts_a_streak_of_one(self):
        decision = decide(streak_rule())

        assert decision.reason is Reason.COUNTED
        assert decision.counted is True
        assert decision.progress == 1

    def test_a_completion_the_next_day_continues_the_streak(self):
        decision = decide(streak_rule(), last_period_start=days_before(1), streak=4)

        assert decision.reason is Reason.COUNTED
        assert decision.progress == 5

    @pytest.mark.parametrize("days_missed", [1, 2, 30])
    def test_a_missed_period_resets_the_streak(self, days_missed):
        decision = decide(streak_rule(), last_period_start=days_before(1 + days_missed), streak=9)

        assert decision.reason is Reason.COUNTED
        assert decision.counted is True
        assert decision.progress == 1
        assert_no_award(decision)

    def test_a_second_completion_in_a_counted_period_changes_nothing(self):
        decision = decide(streak_rule(), at=NOON + timedelta(hours=6), last_period_start=TODAY, streak=10, awards=1)

        assert decision.reason is Reason.PERIOD_ALREADY_COUNTED
        assert decision.counted is False
        assert decision.progress == 10
        assert_no_award(decision)

    @pytest.mark.parametrize("days_late", [1, 2, 40])
    def test_an_event_older_than_the_last_counted_period_does_not_change_the_streak(self, days_late):
        decision = decide(streak_rule(), at=NOON - timedelta(days=days_late), last_period_start=TODAY, streak=6)

        assert decision.reason is Reason.LATE_EVENT
        assert decision.counted is False
        assert decision.progress == 6
        assert_no_award(decision)

    @pytest.mark.parametrize(
        ("streak_before", "reason", "points"),
        [
            (8, Reason.COUNTED, 0),
            (9, Reason.AWARDED, 2),
            (10, Reason.COUNTED, 0),
            (19, Reason.AWARDED, 2),
            (29, Reason.AWARDED, 2),
        ],
    )
    def test_awards_each_time_the_streak_reaches_a_multiple_of_n(self, streak_before, reason, points):
        decision = decide(streak_rule(), last_period_start=days_before(1), streak=streak_before)

        assert decision.reason is reason
        assert decision.progress == streak_before + 1
        assert decision.points == points

    def test_a_reset_streak_does_not_award_at_the_old_count(self):
        decision = decide(streak_rule(), last_period_start=days_before(2), streak=9)

        assert decision.progress == 1
        assert not decision.awarded

    def test_daily_sign_ins_award_on_every_tenth_day_of_a_run_and_a_gap_starts_over(self):
        rule = streak_rule()
        signed_in = [day for day in range(40) if day != 12]  # day 12 is missed
        last, streak, awarded_on = None, 0, []
        for day in signed_in:
            at = datetime(2026, 1, 1, 8, tzinfo=TZ) + timedelta(days=day)
            decision = decide(rule, at=at, last_period_start=last, streak=streak)
            last, streak = decision.period_start, decision.progress
            if decision.awarded:
                awarded_on.append(day)

        assert awarded_on == [9, 22, 32]
        assert streak == 27

    def test_the_decision_carries_the_period_of_the_completion(self):
        decision = decide(streak_rule(period=WEEK), last_period_start=datetime(2026, 3, 2, tzinfo=TZ), streak=1)

        assert decision.progress == 2
        assert decision.period_start == datetime(2026, 3, 9, tzinfo=TZ)
        assert decision.deadline == datetime(2026, 3, 16, tzinfo=TZ)

    @pytest.mark.parametrize(
        ("period", "last", "at", "expected"),
        [
            (WEEK, datetime(2026, 12, 21, tzinfo=TZ), datetime(2027, 1, 3, 22, tzinfo=TZ), 4),  # week of 28 Dec
            (WEEK, datetime(2026, 12, 21, tzinfo=TZ), datetime(2027, 1, 4, 9, tzinfo=TZ), 1),  # skipped a week
            (MONTH, datetime(2026, 12, 1, tzinfo=TZ), datetime(2027, 1, 31, tzinfo=TZ), 4),
            (MONTH, datetime(2026, 1, 1, tzinfo=TZ), datetime(2026, 3, 1, tzinfo=TZ), 1),  # no February
            (YEAR, datetime(2026, 1, 1, tzinfo=TZ), datetime(2027, 12, 31, 23, tzinfo=TZ), 4),
            (DAY, datetime(2026, 2, 28, tzinfo=TZ), datetime(2026, 3, 1, 0, 0, tzinfo=TZ), 4),
            (DAY, datetime(2026, 12, 31, tzinfo=TZ), datetime(2027, 1, 1, 23, 59, tzinfo=TZ), 4),
        ],
        ids=[
            "week-over-new-year",
            "week-skipped",
            "month-over-new-year",
            "month-skipped",
            "year",
            "day-end-of-feb",
            "day-new-year",
        ],
    )
    def test_streaks_follow_calendar_periods(self, period, last, at, expected):
        decision = decide(streak_rule(period=period), at=at, last_period_start=last, streak=3)

        assert decision.progress == expected

    @pytest.mark.parametrize(
        ("tz", "days"),
        [
            (NEW_YORK, [(2026, 3, 7), (2026, 3, 8), (2026, 3, 9)]),  # the 23-hour Sunday in the middle
            (NEW_YORK, [(2026, 10, 31), (2026, 11, 1), (2026, 11, 2)]),  # the 25-hour Sunday in the middle
            (ZoneInfo("Europe/Berlin"), [(2026, 3, 28), (2026, 3, 29), (2026, 3, 30)]),
            (ZoneInfo("Europe/Berlin"), [(2026, 10, 24), (2026, 10, 25), (2026, 10, 26)]),
        ],
        ids=["ny-spring", "ny-autumn", "berlin-spring", "berlin-autumn"],
    )
    @pytest.mark.parametrize("hour", [0, 12, 23])
    def test_a_streak_continues_across_a_clock_change(self, tz, days, hour):
        rule = streak_rule(required=3)
        last, streak = None, 0
        for day in days:
            decision = decide(rule, at=datetime(*day, hour, 30, tzinfo=tz), tz=tz, last_period_start=last, streak=streak)
            last, streak = decision.period_start.astimezone(UTC), decision.progress

        assert streak == 3
        assert decision.awarded

    def test_a_last_period_read_back_in_utc_is_recognised(self):
        last = days_before(1).astimezone(UTC)  # the database hands period starts back in UTC

        assert decide(streak_rule(), last_period_start=last, streak=9).awarded
        assert decide(streak_rule(), last_period_start=TODAY.astimezone(UTC), streak=9).reason is Reason.PERIOD_ALREADY_COUNTED
        assert decide(streak_rule(), last_period_start=days_before(-1).astimezone(UTC), streak=9).reason is Reason.LATE_EVENT

    @pytest.mark.parametrize(
        ("zone", "at"),
        [("America/Santiago", datetime(2026, 9, 6, 15)), ("America/Havana", datetime(2026, 11, 1, 15))],
        ids=["santiago-midnight-skipped", "havana-midnight-repeated"],
    )
    def test_a_second_completion_on_a_day_whose_midnight_moved_is_already_counted(self, zone, at):
        tz = ZoneInfo(zone)
        at = at.replace(tzinfo=tz)
        first = decide(streak_rule(), at=at.replace(hour=9), tz=tz, last_period_start=None, streak=0)
        stored = first.period_start.astimezone(UTC)  # as written to and read back from the database

        second = decide(streak_rule(), at=at, tz=tz, last_period_start=stored, streak=first.progress)

        assert second.reason is Reason.PERIOD_ALREADY_COUNTED
        assert second.progress == 1

    def test_period_none_is_invalid_for_streaks(self):
        with pytest.raises(ValueError, match="sign_in_streak"):
            decide(streak_rule(period=NONE))


class TestDecision:
    def awarded(self) -> Decision:
        return decide(count_rule(code="first_post", points=10, recipient_cap=100), recipients=99, count=4)

    def test_awarded_is_true_only_for_an_award(self):
        assert self.awarded().awarded is True
        assert decide(count_rule(required=2)).awarded is False

    def test_capped_turns_an_award_into_cap_reached_and_keeps_the_progress(self):
        decision = self.awarded()

        capped = decision.capped()

        assert capped.reason is Reason.CAP_REACHED
        assert capped.points == 0
        assert capped.takes_recipient_place is False
        assert capped.awarded is False
        assert (capped.counted, capped.progress) == (True, 5)
        assert (capped.rule_id, capped.rule_code) == (decision.rule_id, decision.rule_code)
        assert (capped.period_start, capped.deadline) == (decision.period_start, decision.deadline)

    def test_capped_leaves_the_original_untouched(self):
        decision = self.awarded()

        decision.capped()

        assert decision.reason is Reason.AWARDED and decision.points == 10 and decision.takes_recipient_place is True
        with pytest.raises(FrozenInstanceError):
            decision.points = 0

    def test_as_record_summarises_an_award(self):
        assert self.awarded().as_record() == {
            "rule": "first_post",
            "rule_id": 7,
            "counted": True,
            "reason": "awarded",
            "progress": 5,
            "points": 10,
        }

    def test_as_record_says_why_there_were_no_points(self):
        record = decide(count_rule(can_repeat=False), count=2, object_seen=True).as_record()

        assert record == {
            "rule": "sign_in",
            "rule_id": 7,
            "counted": False,
            "reason": "duplicate_object",
            "progress": 2,
            "points": 0,
        }

    @pytest.mark.parametrize("reason", list(Reason))
    def test_as_record_is_plain_json(self, reason):
        decision = Decision(1, "r", reason, False, TODAY, None)

        record = decision.as_record()

        assert json.loads(json.dumps(record)) == record
        assert type(record["reason"]) is str and record["reason"] == reason.value

    def test_as_record_of_a_capped_decision(self):
        assert self.awarded().capped().as_record()["reason"] == "cap_reached"


class TestCooldown:
    """A rule may require a least time between two counted completions (anti-farming)."""

    HOUR = timedelta(hours=1)

    def test_a_completion_inside_the_cooldown_of_an_earlier_counted_one_is_not_counted(self):
        decision = decide(count_rule(cooldown=self.HOUR), count=1, counted_before=NOON - timedelta(minutes=59, seconds=59))

        assert decision.reason is Reason.COOLDOWN
        assert decision.counted is False
        assert decision.progress == 1
        assert_no_award(decision)

    def test_exactly_the_cooldown_later_counts(self):
        decision = decide(count_rule(cooldown=self.HOUR), count=1, counted_before=NOON - self.HOUR)

        assert decision.reason is Reason.AWARDED
        assert decision.progress == 2

    def test_a_late_event_inside_the_cooldown_of_a_later_counted_one_is_not_counted(self):
        decision = decide(count_rule(cooldown=self.HOUR), count=1, counted_after=NOON + timedelta(minutes=30))

        assert decision.reason is Reason.COOLDOWN

    def test_a_late_event_the_cooldown_before_a_later_counted_one_counts(self):
        assert decide(count_rule(cooldown=self.HOUR), count=1, counted_after=NOON + self.HOUR).awarded

    def test_without_a_cooldown_the_neighbours_do_not_matter(self):
        assert decide(count_rule(), counted_before=NOON, counted_after=NOON).awarded

    def test_a_streak_rule_honours_its_cooldown_across_the_period_boundary(self):
        rule = streak_rule(required=1, cooldown=timedelta(hours=20))
        just_after_midnight = datetime(2026, 3, 11, 0, 30, tzinfo=TZ)

        decision = decide(
            rule, at=just_after_midnight, last_period_start=TODAY, streak=1, counted_before=datetime(2026, 3, 10, 23, tzinfo=TZ)
        )

        assert decision.reason is Reason.COOLDOWN
        assert decision.progress == 1
        assert_no_award(decision)

    def test_a_duplicate_object_is_reported_as_such_before_the_cooldown(self):
        rule = count_rule(can_repeat=False, cooldown=self.HOUR)

        assert decide(rule, object_seen=True, counted_before=NOON).reason is Reason.DUPLICATE_OBJECT

    def test_cooldowns_compare_instants_across_the_autumn_clock_change(self):
        first = datetime(2026, 11, 1, 1, 50, tzinfo=NEW_YORK)  # EDT, the first 01:50
        second = datetime(2026, 11, 1, 1, 10, fold=1, tzinfo=NEW_YORK)  # EST, 20 minutes later in real time

        decision = decide(count_rule(cooldown=self.HOUR), at=second, tz=NEW_YORK, count=1, counted_before=first)

        assert decision.reason is Reason.COOLDOWN


def test_progress_and_decision_are_built_as_the_generated_init_would_and_stay_frozen():
    import inspect
    from dataclasses import MISSING, asdict, fields

    at = datetime(2026, 3, 1, tzinfo=UTC)
    decision = Decision(1, "r", Reason.COUNTED, True, at, None, progress=2)
    assert asdict(decision) == {
        "rule_id": 1,
        "rule_code": "r",
        "reason": Reason.COUNTED,
        "counted": True,
        "period_start": at,
        "deadline": None,
        "progress": 2,
        "points": 0,
        "takes_recipient_place": False,
        "cooldown": None,
        "cooldown_ends": None,
    }
    assert replace(decision, points=5) == Decision(1, "r", Reason.COUNTED, True, at, None, progress=2, points=5)
    assert Progress() == Progress(count=0, awards=0) and Progress(streak=3).streak == 3
    with pytest.raises(FrozenInstanceError):
        decision.points = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        Decision(1, "r")  # type: ignore[call-arg]
    for cls in (Progress, Decision):
        params = [(param.name, param.default) for param in inspect.signature(cls.__init__).parameters.values()]
        wanted = [(item.name, inspect.Parameter.empty if item.default is MISSING else item.default) for item in fields(cls)]
        assert params == [("self", inspect.Parameter.empty), *wanted]
