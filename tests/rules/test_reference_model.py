"""What users earn does not depend on the order events arrive in (SPEC §6, G11), on random rules and events.

Hypothesis draws a few users, task types, active rules and an event stream with reversals; the
events go through the real pipeline on the database, fed in time order, shuffled in batches, in
reverse, and with every reversal before its original. Each time, the net points per user, rule and
period, and the count progress, must equal the time-ordered replay of the reference model below,
which is written from the SPEC alone: it shares no code with `apps.rules` and computes calendar
periods itself. Fed again, nothing changes; `verify_ledger` is clean.

`JIFEN_REFERENCE_EXAMPLES` (default 30 per arrival order) sets how many scenarios each order tries.
"""

import io
import os
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from apps.ledger.models import ScoreRecord
from apps.rules.models import RuleRecipient, ScoreRule, ScoreRuleObjectPoints, UserScoreInfo
from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_process, events_process_batch
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

# (first local day, number of days) that events fall on. Every span holds Sunday 25 October 2026,
# when Berlin's clocks go back (03:00 CEST → 02:00 CET: 02:00-03:00 happens twice); the longest
# also crosses a month end. Short spans make streaks and shared periods likely.
SPANS = [(date(2026, 10, 24), 2), (date(2026, 10, 21), 8), (date(2026, 10, 12), 24)]
TIME_ZONES = ["Asia/Shanghai", "Europe/Berlin"]
BUSINESS_IDS = ["", "1", "2"]
REVERSED_TASK, REVERSING_TASK = "t0", "undo"
# Minutes after local midnight worth trying often: the day's edges, and 02:30, which is in Berlin's repeated hour.
EDGE_MINUTES = [0, 1, 150, 12 * 60, 23 * 60 + 59]


# --- The reference model --------------------------------------------------------------------


@dataclass(frozen=True)
class RefRule:
    code: str
    task: str
    kind: str  # "count" or "streak"
    period: str  # "day", "week", "month" or "none"
    n: int
    points: int
    award_limit: int | None = None
    cap: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    can_repeat: bool = True
    object_points: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RefEvent:
    user: int  # index into the scenario's users
    task: str
    business_id: str
    at: datetime  # in UTC: two aware times in one zone compare by wall clock, which a repeated hour breaks


def period_key(period: str, at: datetime, tz: ZoneInfo) -> object:
    """The period containing `at`, named by its first local day ("lifetime" for `none`)."""
    if period == "none":
        return "lifetime"
    day = at.astimezone(tz).date()
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period_key(period: str, key: date) -> date:
    if period == "day":
        return key + timedelta(days=1)
    if period == "week":
        return key + timedelta(days=7)
    return (key.replace(day=28) + timedelta(days=4)).replace(day=1)


def live_events(events: list[RefEvent]) -> list[RefEvent]:
    """The events that stay live once every reversal has undone, in time order, the latest live
    completion of the reversed task with its user and business id at or before it (SPEC §6)."""
    undone: set[int] = set()
    stacks: dict[tuple[int, str], list[int]] = {}
    order = sorted(range(len(events)), key=lambda i: (events[i].at, events[i].task == REVERSING_TASK))
    for i in order:
        event = events[i]
        stack = stacks.setdefault((event.user, event.business_id), [])
        if event.task == REVERSED_TASK:
            stack.append(i)
        elif event.task == REVERSING_TASK and stack:
            undone.add(stack.pop())
    return [events[i] for i in order if i not in undone]


def reference_points(rule: RefRule, completions: list[RefEvent], tz: ZoneInfo) -> tuple[dict, dict]:
    """One user's due points per period under `rule` (SPEC §4, recipient cap aside), and count progress per period.

    `completions`: the user's live completions of the rule's task, in time order.
    """
    points: dict[object, int] = {}
    counts: dict[object, int] = {}
    awards: dict[object, int] = {}
    seen: dict[object, set[str]] = {}
    last_key, streak = None, 0
    for c in completions:
        if (rule.start is not None and c.at < rule.start) or (rule.end is not None and c.at >= rule.end):
            continue
        key = period_key(rule.period, c.at, tz)
        if rule.kind == "streak":
            if key == last_key:
                continue
            streak = streak + 1 if last_key is not None and next_period_key(rule.period, last_key) == key else 1
            last_key, progress = key, streak
        else:
            if not rule.can_repeat and c.business_id in seen.setdefault(key, set()):
                continue
            seen.setdefault(key, set()).add(c.business_id)
            counts[key] = progress = counts.get(key, 0) + 1
        if progress % rule.n or (rule.award_limit is not None and awards.get(key, 0) >= rule.award_limit):
            continue
        awards[key] = awards.get(key, 0) + 1
        points[key] = points.get(key, 0) + rule.object_points.get(c.business_id, rule.points)
    return points, counts


def reference(scenario: "Scenario", tz: ZoneInfo) -> tuple[dict, dict]:
    """{(user, rule code, period): due points} and {(user, rule code, period): count progress}, zeros left out."""
    live = live_events(scenario.events)
    due, progress = {}, {}
    for rule in scenario.rules:
        for user in range(scenario.users):
            mine = [e for e in live if e.user == user and e.task == rule.task]
            points, counts = reference_points(rule, mine, tz)
            due.update({(user, rule.code, key): value for key, value in points.items() if value})
            if rule.kind == "count":
                progress.update({(user, rule.code, key): value for key, value in counts.items() if value})
    return due, progress


# --- Generating scenarios -------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    tz_name: str
    users: int
    tasks: list[str]
    rules: list[RefRule]
    events: list[RefEvent]


def weighted(tasks: list[str]) -> list[str]:
    """The tasks to sample from, the reversed one twice as often: reversals then find something to undo."""
    return tasks + [REVERSED_TASK]


@st.composite
def instants(draw, tz: ZoneInfo, span: tuple[date, int]) -> datetime:
    """A local time on a day of `span`, as a UTC instant."""
    day = span[0] + timedelta(days=draw(st.integers(0, span[1] - 1)))
    minute = draw(st.one_of(st.sampled_from(EDGE_MINUTES), st.integers(0, 24 * 60 - 1)))
    wall = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz, fold=draw(st.integers(0, 1)))
    return wall.astimezone(UTC)


@st.composite
def rules(draw, code: str, tasks: list[str], tz: ZoneInfo, span: tuple[date, int]) -> RefRule:
    kind = draw(st.sampled_from(["count", "streak"]))
    periods = ["day", "week", "month"] + (["none"] if kind == "count" else [])
    start = end = None
    if draw(st.integers(0, 3)) == 0:  # a window on one rule in four: outside it, a rule is inert
        start = draw(st.none() | instants(tz, span))
        end = draw(st.none() | instants(tz, span))
    if start is not None and end is not None and end <= start:
        start, end = end, start + timedelta(hours=draw(st.integers(1, 72)))
    object_points = draw(st.dictionaries(st.sampled_from(["1", "2"]), st.integers(6, 9), max_size=1))
    return RefRule(
        code=code,
        task=draw(st.sampled_from(weighted(tasks))),
        kind=kind,
        period=draw(st.sampled_from(periods)),
        n=draw(st.integers(1, 3)),
        points=draw(st.integers(1, 5)),
        award_limit=draw(st.none() | st.integers(0, 3)),
        cap=draw(st.none() | st.integers(1, 2)),
        start=start,
        end=end,
        can_repeat=draw(st.booleans()),
        object_points=object_points,
    )


@st.composite
def scenarios(draw) -> Scenario:
    tz_name = draw(st.sampled_from(TIME_ZONES))
    tz = ZoneInfo(tz_name)
    span = draw(st.sampled_from(SPANS))
    users = draw(st.integers(1, 3))
    tasks = ["t0", "t1"][: draw(st.integers(1, 2))] + ([REVERSING_TASK] if draw(st.booleans()) else [])
    rule_list = [draw(rules(f"r{i}", tasks, tz, span)) for i in range(draw(st.integers(1, 4)))]
    size = draw(st.integers(1, 25))  # a uniform length: left to itself, st.lists favours short streams
    raw = draw(
        st.lists(
            st.builds(
                RefEvent,
                st.integers(0, users - 1),
                st.sampled_from(weighted(tasks)),
                st.sampled_from(BUSINESS_IDS),
                instants(tz, span),
            ),
            min_size=size,
            max_size=size,
            unique_by=lambda e: e.at,  # distinct instants: "latest by occurred_at" (§6) is then never a tie
        )
    )
    events = sorted(raw, key=lambda e: e.at) if draw(st.booleans()) else raw
    for i, event in enumerate(events):
        # Most reversals undo something: the user and business id of an earlier completion of the reversed task.
        earlier = [e for e in events[:i] if e.task == REVERSED_TASK]
        if event.task == REVERSING_TASK and earlier and draw(st.integers(0, 3)):
            target = draw(st.sampled_from(earlier))
            events[i] = replace(event, user=target.user, business_id=target.business_id)
    return Scenario(tz_name, users, tasks, rule_list, events)


# --- Running the real pipeline --------------------------------------------------------------


def build_rules(rules: list[RefRule]) -> None:
    """Create the rules in list order, so their ids (the engine's evaluation order) follow it."""
    for ref in rules:
        rule = ScoreRuleFactory(
            score_type=ref.code,
            task_type=ref.task,
            kind=ref.kind,
            statistical_period=ref.period,
            required_number_of_times=ref.n,
            points=ref.points,
            award_limit_per_period=ref.award_limit,
            number_limit_all=ref.cap,
            start_time=ref.start,
            end_time=ref.end,
            can_repeat=ref.can_repeat,
        )
        for business_id, points in ref.object_points.items():
            ScoreRuleObjectPoints.objects.create(rule=rule, business_id=business_id, points=points)


def app_points(users: list, rules: list[RefRule], tz: ZoneInfo) -> dict:
    """{(user index, rule code, period of the completion earned for): net points of the rule's entries}, zeros left out."""
    index = {user.pk: i for i, user in enumerate(users)}
    periods = {rule.code: rule.period for rule in rules}
    net: dict = {}
    entries = ScoreRecord.objects.filter(rule__isnull=False).select_related("completion", "reverses__completion")
    for entry in entries:
        completion = entry.reverses.completion if entry.reverses_id else entry.completion
        key = (index[entry.user_id], entry.business_type, period_key(periods[entry.business_type], completion.occurred_at, tz))
        net[key] = net.get(key, 0) + entry.trade_amount
    return {key: value for key, value in net.items() if value}


def app_count_progress(users: list, tz: ZoneInfo) -> dict:
    index = {user.pk: i for i, user in enumerate(users)}
    progress = {}
    for info in UserScoreInfo.objects.filter(achievement_type__kind=ScoreRule.Kind.COUNT).select_related("achievement_type"):
        rule = info.achievement_type
        if info.achievement_amount_now:
            key = "lifetime" if rule.statistical_period == "none" else info.period_start.astimezone(tz).date()
            progress[(index[info.user_id], rule.score_type, key)] = info.achievement_amount_now
    return progress


ARRIVALS = ["in time order", "shuffled, in batches", "in reverse", "reversals first"]


def arrival(scenario: Scenario, how: str, shuffle: list[int]) -> list[tuple[int, RefEvent]]:
    """The scenario's events, with their index (their event id), in the order `how` feeds them."""
    indexed = list(enumerate(scenario.events))
    in_time = sorted(indexed, key=lambda item: item[1].at)
    if how == "in time order":
        return in_time
    if how == "in reverse":
        return in_time[::-1]
    if how == "reversals first":
        return [item for item in in_time if item[1].task == REVERSING_TASK] + [
            item for item in in_time if item[1].task != REVERSING_TASK
        ]
    return [indexed[i] for i in shuffle]


def feed(users: list, tz: ZoneInfo, events: list[tuple[int, RefEvent]], batch: int) -> None:
    """Through the worker's batch path, `batch` events a transaction (1: `event_process`, one by one)."""
    built = [
        Event(
            event_id=uuid.UUID(int=index + 1),
            user_id=users[ref.user].pk,
            task_type=ref.task,
            occurred_at=ref.at.astimezone(tz),  # as the site would send it: local time
            business_id=ref.business_id,
        )
        for index, ref in events
    ]
    if batch == 1:
        for event in built:
            event_process(event=event)
        return
    for i in range(0, len(built), batch):
        events_process_batch(payloads=[event.to_payload() for event in built[i : i + batch]])


def run_scenario(scenario: Scenario, how: str, shuffle: list[int], batch: int) -> None:
    tz = ZoneInfo(scenario.tz_name)
    users = [UserFactory(username=f"u{i}") for i in range(scenario.users)]
    for task in scenario.tasks:
        TaskConfigFactory(task_type=task, reverses=REVERSED_TASK if task == REVERSING_TASK else "")
    build_rules(scenario.rules)
    feed(users, tz, arrival(scenario, how, shuffle), batch if how == "shuffled, in batches" else 1)

    due, progress = reference(scenario, tz)
    got = app_points(users, scenario.rules, tz)
    capped = {rule.code: rule.cap for rule in scenario.rules if rule.cap is not None}
    for code, cap in capped.items():
        # Places go first come, first served in processing order (SPEC §6): a recipient's awards follow
        # the reference, anyone else's are nothing, and the cap holds.
        recipients = set(RuleRecipient.objects.filter(rule__score_type=code).values_list("user_id", flat=True))
        assert len(recipients) <= cap
        placed = {i for i, user in enumerate(users) if user.pk in recipients}
        due = {key: value for key, value in due.items() if key[1] != code or key[0] in placed}
    assert got == due, f"net points per (user, rule, period), fed {how}"
    assert app_count_progress(users, tz) == progress, f"count progress, fed {how}"
    call_command("verify_ledger", stdout=io.StringIO(), stderr=io.StringIO())

    # Fed again, in any order, nothing changes.
    entries = ScoreRecord.objects.count()
    feed(users, tz, arrival(scenario, "in reverse", shuffle), 1)
    assert ScoreRecord.objects.count() == entries


EXAMPLES = int(os.environ.get("JIFEN_REFERENCE_EXAMPLES", "30"))
# No shrinking: a failing scenario of this size takes many minutes to shrink; the report already
# shows the scenario, the arrival order and the batch size drawn.


@pytest.mark.django_db
@pytest.mark.parametrize("how", ARRIVALS)
@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(scenario=scenarios(), data=st.data())
def test_what_users_earn_does_not_depend_on_arrival_order(how, scenario, data):
    shuffle = data.draw(st.permutations(range(len(scenario.events))), label="arrival order")
    batch = data.draw(st.integers(2, 10), label="batch size")
    # One database for all examples: each runs in a transaction that is rolled back, since
    # ledger entries cannot be deleted.
    with override_settings(TIME_ZONE=scenario.tz_name), transaction.atomic():
        run_scenario(scenario, how, shuffle, batch)
        transaction.set_rollback(True)
