"""The whole pipeline against a small reference model of SPEC §4 and §6, on random rules and events.

Hypothesis draws a few users, task types, active rules and an event stream (late events and
reversals included); the events go through `event_process`, and every user's balance, ledger
entries and count progress must equal what the model below computes. The model is written from
the SPEC alone: it shares no code with `apps.rules` and computes calendar periods itself.
"""

import io
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from apps.ledger.models import Account, ScoreRecord
from apps.rules.models import ScoreRule, ScoreRuleObjectPoints, UserScoreInfo
from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_process
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


@dataclass
class RefEntry:
    seq: int
    kind: str  # "award" or "reversal"
    code: str
    amount: int
    period: object = None
    reverses: int | None = None  # seq of the award that a reversal compensates
    reversed: bool = False


@dataclass
class RefCompletion:
    user: int
    task: str
    business_id: str
    at: datetime
    counted: dict[str, object] = field(default_factory=dict)  # rule code -> period key it counted in
    awards: list[RefEntry] = field(default_factory=list)
    reversed: bool = False


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


class ReferenceModel:
    """SPEC §4 and §6, one event at a time, over plain lists."""

    def __init__(self, rules: list[RefRule], tz: ZoneInfo) -> None:
        self.rules = rules
        self.tz = tz
        self.completions: list[RefCompletion] = []
        self.ledgers: dict[int, list[RefEntry]] = {}
        self.recipients: dict[str, set[int]] = {rule.code: set() for rule in rules}
        self.streaks: dict[tuple[int, str], tuple[date, int]] = {}  # (user, rule) -> (last counted period, length)

    def _post(self, user: int, **entry) -> RefEntry:
        ledger = self.ledgers.setdefault(user, [])
        ledger.append(RefEntry(seq=len(ledger) + 1, **entry))
        return ledger[-1]

    def process(self, event: RefEvent) -> None:
        if event.task == REVERSING_TASK:
            self._reverse(event)
        completion = RefCompletion(event.user, event.task, event.business_id, event.at)
        self.completions.append(completion)
        for rule in self.rules:
            if rule.task == event.task:
                self._apply(rule, completion)

    def _reverse(self, event: RefEvent) -> None:
        candidates = [
            c
            for c in self.completions
            if (c.user, c.task, c.business_id) == (event.user, REVERSED_TASK, event.business_id) and not c.reversed
        ]
        if not candidates:
            return
        target = max(candidates, key=lambda c: c.at)
        target.reversed = True
        for award in target.awards:
            award.reversed = True
            self._post(event.user, kind="reversal", code=award.code, amount=-award.amount, reverses=award.seq)

    def _apply(self, rule: RefRule, completion: RefCompletion) -> None:
        at = completion.at
        if (rule.start is not None and at < rule.start) or (rule.end is not None and at >= rule.end):
            return
        key = period_key(rule.period, at, self.tz)
        if rule.kind == "streak":
            last = self.streaks.get((completion.user, rule.code))
            if last is not None and key <= last[0]:
                return  # this period already counts, or the event is older than it
            continued = last is not None and next_period_key(rule.period, last[0]) == key
            progress = last[1] + 1 if continued else 1
            self.streaks[(completion.user, rule.code)] = (key, progress)
        else:
            counted = [
                c for c in self.completions if c.user == completion.user and c.counted.get(rule.code) == key and not c.reversed
            ]
            if not rule.can_repeat and any(c.business_id == completion.business_id for c in counted):
                return
            progress = len(counted) + 1
        completion.counted[rule.code] = key
        if progress % rule.n:
            return
        awards_in_period = [
            e
            for e in self.ledgers.get(completion.user, [])
            if e.kind == "award" and e.code == rule.code and e.period == key and not e.reversed
        ]
        if rule.award_limit is not None and len(awards_in_period) >= rule.award_limit:
            return
        winners = self.recipients[rule.code]
        if rule.cap is not None and completion.user not in winners and len(winners) >= rule.cap:
            return
        winners.add(completion.user)
        amount = rule.object_points.get(completion.business_id, rule.points)
        completion.awards.append(self._post(completion.user, kind="award", code=rule.code, amount=amount, period=key))

    def balance(self, user: int) -> int:
        return sum(e.amount for e in self.ledgers.get(user, []))

    def entries(self, user: int) -> list[tuple]:
        return [(e.kind, e.code, e.amount, e.reverses) for e in self.ledgers.get(user, [])]

    def count_progress(self, user: int) -> dict[tuple[str, object], int]:
        """{(rule code, period): live counted completions} for every count-rule period that ever counted one."""
        progress: dict[tuple[str, object], int] = {}
        for rule in self.rules:
            if rule.kind != "count":
                continue
            for c in self.completions:
                if c.user == user and rule.code in c.counted:
                    slot = (rule.code, c.counted[rule.code])
                    progress[slot] = progress.get(slot, 0) + (not c.reversed)
        return progress


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


def app_entries(user) -> list[tuple]:
    records = list(ScoreRecord.objects.filter(user=user).order_by("seq"))
    seq_of = {r.pk: r.seq for r in records}
    return [(r.kind, r.business_type, r.trade_amount, seq_of.get(r.reverses_id)) for r in records]


def app_count_progress(user, tz: ZoneInfo) -> dict[tuple[str, object], int]:
    infos = UserScoreInfo.objects.filter(user=user, achievement_type__kind=ScoreRule.Kind.COUNT).select_related(
        "achievement_type"
    )
    progress = {}
    for info in infos:
        rule = info.achievement_type
        key = "lifetime" if rule.statistical_period == "none" else info.period_start.astimezone(tz).date()
        progress[(rule.score_type, key)] = info.achievement_amount_now
    return progress


def run_scenario(scenario: Scenario) -> None:
    tz = ZoneInfo(scenario.tz_name)
    users = [UserFactory(username=f"u{i}") for i in range(scenario.users)]
    for task in scenario.tasks:
        TaskConfigFactory(task_type=task, reverses=REVERSED_TASK if task == REVERSING_TASK else "")
    build_rules(scenario.rules)
    model = ReferenceModel(scenario.rules, tz)
    for ref in scenario.events:
        event_process(
            event=Event(
                event_id=uuid.uuid4(),
                user_id=users[ref.user].pk,
                task_type=ref.task,
                occurred_at=ref.at.astimezone(tz),  # as the site would send it: local time
                business_id=ref.business_id,
            )
        )
        model.process(ref)

    for index, user in enumerate(users):
        assert app_entries(user) == model.entries(index), f"ledger of user {index}"
        assert (Account.objects.filter(user=user).values_list("balance", flat=True).first() or 0) == model.balance(index)
        assert app_count_progress(user, tz) == model.count_progress(index), f"count progress of user {index}"
    call_command("verify_ledger", stdout=io.StringIO(), stderr=io.StringIO())


@pytest.mark.django_db
@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_pipeline_matches_the_reference_model(scenario):
    # One database for all examples: each runs in a transaction that is rolled back, since
    # ledger entries cannot be deleted.
    with override_settings(TIME_ZONE=scenario.tz_name), transaction.atomic():
        run_scenario(scenario)
        transaction.set_rollback(True)
