"""The pure replay: the engine over a stream of completions, with the progress they leave (no database)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apps.rules.engine import Reason, RuleSpec
from apps.rules.replay import Replay, Tally

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # a Monday, 09:00 in Shanghai


def run(spec: RuleSpec, rows: list[tuple[int, datetime, str]]) -> tuple[list[Reason], Tally]:
    replay, tally = Replay(spec, TZ), Tally()
    reasons = []
    for user_id, at, business_id in rows:
        decision = replay.step(user_id, at, business_id)
        tally.add(user_id, decision)
        reasons.append(decision.reason)
    return reasons, tally.stop()


def test_count_rule_with_limit_repeat_and_cap():
    spec = RuleSpec(1, "post", "count", "day", required=1, points=5, award_limit=2, recipient_cap=1, can_repeat=False)
    reasons, tally = run(
        spec,
        [
            (1, T0, "a"),
            (1, T0 + timedelta(minutes=1), "a"),  # same object, same day
            (1, T0 + timedelta(minutes=2), "b"),
            (1, T0 + timedelta(minutes=3), "c"),  # third award of the day
            (2, T0 + timedelta(minutes=4), "a"),  # the one place is taken
            (1, T0 + timedelta(days=1), "a"),  # a new day: the object counts again
        ],
    )
    assert reasons == [
        Reason.AWARDED,
        Reason.DUPLICATE_OBJECT,
        Reason.AWARDED,
        Reason.LIMIT_REACHED,
        Reason.CAP_REACHED,
        Reason.AWARDED,
    ]
    assert tally.per_user == {1: [15, 3]}
    assert (tally.recipients, tally.awards, tally.points, tally.completions, tally.counted) == (1, 3, 15, 6, 5)
    assert tally.reasons["duplicate_object"] == 1


def test_streak_rule_resets_on_a_missed_day_and_ignores_a_second_completion():
    spec = RuleSpec(2, "streak", "streak", "day", required=2, points=7)
    days = [0, 0, 1, 2, 4, 5]
    reasons, tally = run(spec, [(1, T0 + timedelta(days=d), "") for d in days])
    assert reasons == [
        Reason.COUNTED,
        Reason.PERIOD_ALREADY_COUNTED,
        Reason.AWARDED,  # streak 2
        Reason.COUNTED,  # streak 3
        Reason.COUNTED,  # day 3 missed: streak 1
        Reason.AWARDED,  # streak 2
    ]
    assert tally.per_user == {1: [14, 2]}


def test_object_points_and_n():
    spec = RuleSpec(3, "share", "count", "week", required=2, points=1, object_points={"blog": 10})
    reasons, tally = run(spec, [(1, T0, "x"), (1, T0 + timedelta(hours=1), "blog"), (1, T0 + timedelta(hours=2), "x")])
    assert reasons == [Reason.COUNTED, Reason.AWARDED, Reason.COUNTED]
    assert tally.points == 10  # the completion that triggered the award decides the amount


def test_window_is_respected():
    spec = RuleSpec(4, "w", "count", "day", required=1, points=1, start_time=T0 + timedelta(hours=1))
    reasons, _ = run(spec, [(1, T0, ""), (1, T0 + timedelta(hours=1), "")])
    assert reasons == [Reason.OUTSIDE_WINDOW, Reason.AWARDED]


def test_cooldown_per_user_counts_from_the_last_counted_completion():
    spec = RuleSpec(5, "cool", "count", "day", required=1, points=1, cooldown=timedelta(hours=1))
    at = [T0, T0 + timedelta(minutes=30), T0 + timedelta(minutes=70), T0 + timedelta(minutes=100), T0 + timedelta(minutes=131)]
    reasons, tally = run(spec, [(1, when, "") for when in at] + [(2, T0 + timedelta(minutes=30), "")])
    # 30 min: too close to 0; 70: an hour after 0 (the refused one does not restart the clock); 100: too close to 70.
    assert reasons == [Reason.AWARDED, Reason.COOLDOWN, Reason.AWARDED, Reason.COOLDOWN, Reason.AWARDED, Reason.AWARDED]
    assert tally.per_user == {1: [3, 3], 2: [1, 1]}


def test_cooldown_per_object_keeps_one_clock_per_business_id():
    spec = RuleSpec(6, "cool", "count", "day", required=1, points=1, cooldown=timedelta(hours=1), cooldown_per_object=True)
    rows = [(1, T0, "a"), (1, T0 + timedelta(minutes=10), "b"), (1, T0 + timedelta(minutes=20), "a")]
    reasons, _ = run(spec, rows)
    assert reasons == [Reason.AWARDED, Reason.AWARDED, Reason.COOLDOWN]


def test_top_users_by_points_then_id():
    tally = Tally()
    tally.per_user = {3: [5, 1], 1: [5, 2], 2: [9, 1]}
    assert tally.top(2) == [(2, 9, 1), (1, 5, 2)]
