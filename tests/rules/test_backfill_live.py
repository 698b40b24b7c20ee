"""Backfill against live traffic: reversals under its feet, workers leaving the rule to it, the catch-up pass."""

import re
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

import apps.rules.services.backfill as backfill
from apps.ledger.models import Account, ScoreRecord
from apps.rules import tasks as rule_tasks
from apps.rules.models import BackfillRun, UserScoreInfo
from apps.rules.selectors.dry_run import rule_dry_run, undecided_completions
from apps.rules.selectors.rules import active_rules_for
from apps.rules.services.backfill import (
    backfill_request,
    backfill_run_execute,
    score_rule_activate_with_backfill,
    score_rule_backfill,
)
from apps.rules.services.workflow import score_rule_activate
from apps.tasks.models import UserTaskRecord
from apps.tasks.services import NewCompletion, completions_create
from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_process
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory
from tests.rules.test_backfill import RULES, awarded_per_user, draft, seed_history

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch, settings):
    """The command path waits JIFEN_RULES_REFRESH_S + STALE_BATCH_S before its catch-up pass: not here."""
    monkeypatch.setattr(backfill, "STALE_BATCH_S", 0.0)
    settings.JIFEN_RULES_REFRESH_S = 0.0  # every lookup checks the stamp: the tests see each change at once


@pytest.fixture
def queued_only(monkeypatch):
    """The run is queued on commit, not started: the test starts it when it wants."""
    calls = []
    monkeypatch.setattr(rule_tasks.run_backfill, "apply_async", lambda *args, **kwargs: calls.append((args, kwargs)))
    return calls


def record(config, user, at, business_id="") -> int:
    """A completion recorded with no decision of any rule, as a worker that did not evaluate the rule leaves it."""
    (pk,) = completions_create(
        completions=[
            NewCompletion(
                task_id=config.pk, user_id=user.pk, event_id=uuid.uuid4(), occurred_at=at, business_id=business_id, location=""
            )
        ]
    )
    return pk


def live(user, at=None) -> UserTaskRecord:
    event_id = uuid.uuid4()
    event_process(event=Event(event_id=event_id, user_id=user.pk, task_type="post", occurred_at=at or timezone.now()))
    return UserTaskRecord.objects.get(event_id=event_id)


def draft_rule(*, start, required: int, **options):
    """A draft `post` rule worth 5 points from `start`: N=`required`, a daily count unless `options` say otherwise."""
    fields = {"kind": "count", "statistical_period": "day", "required_number_of_times": required, **options}
    return ScoreRuleFactory(task_type="post", score_type="r", status="editing", points=5, start_time=start, **fields)


def decided_by(completion: UserTaskRecord, rule) -> bool:
    completion.refresh_from_db()
    return any(d["rule_id"] == rule.pk for d in completion.decisions)


def test_a_completion_reversed_between_the_page_read_and_the_account_lock_is_not_awarded(monkeypatch):
    config = TaskConfigFactory(task_type="post")
    user = UserFactory()
    now = timezone.now()
    reversed_one = record(config, user, now - timedelta(days=1), "p1")
    kept = record(config, user, now - timedelta(hours=1), "p2")
    rule = draft({"kind": "count", "statistical_period": "day", "required_number_of_times": 1, "points": 5}, days_back=3)
    score_rule_activate(rule=rule)
    real_lock = backfill.accounts_lock

    def lock_after_a_live_reversal(*, user_ids):
        # A worker reverses the post (the rule had not counted it: only reversed_at is set) and
        # commits after the backfill read its page, before it takes the account locks.
        UserTaskRecord.objects.filter(pk=reversed_one).update(reversed_at=timezone.now())
        return real_lock(user_ids=user_ids)

    monkeypatch.setattr(backfill, "accounts_lock", lock_after_a_live_reversal)
    run = score_rule_backfill(rule=rule)

    assert run.status == BackfillRun.Status.DONE, run.error
    assert not ScoreRecord.objects.filter(completion_id=reversed_one).exists()
    assert list(ScoreRecord.objects.filter(rule=rule, kind="award").values_list("completion_id", flat=True)) == [kept]
    assert (run.completions, run.awards) == (1, 1)
    assert not decided_by(UserTaskRecord.objects.get(pk=reversed_one), rule)
    call_command("verify_ledger")


def test_a_rule_is_left_to_its_backfill_while_the_run_is_queued_or_running_and_workers_take_it_up_when_done(queued_only):
    TaskConfigFactory(task_type="post")
    rule = draft({"kind": "count", "statistical_period": "day", "required_number_of_times": 1, "points": 5})
    score_rule_activate(rule=rule)
    assert active_rules_for(task_type="post") == (rule,)
    run = backfill_request(rule=rule)
    assert active_rules_for(task_type="post") == ()  # a queued run: no ScoreRule change, the cache moves all the same
    BackfillRun.objects.filter(pk=run.pk).update(status=BackfillRun.Status.RUNNING)
    assert active_rules_for(task_type="post") == ()
    BackfillRun.objects.filter(pk=run.pk).update(status=BackfillRun.Status.FAILED, finished_at=timezone.now())
    assert active_rules_for(task_type="post") == (rule,)  # a failed run leaves the rule to the workers again


@pytest.mark.parametrize("kind", ["count", "streak"])
def test_a_live_completion_during_the_backfill_is_decided_by_it_in_order_and_earns_its_award(kind, queued_only):
    config = TaskConfigFactory(task_type="post")
    user = UserFactory()
    now = timezone.now()
    if kind == "count":  # two a day: one completion before the activation, one live right after
        past = [now - timedelta(minutes=5)]
        options = {"required": 2}
        start = now - timedelta(hours=1)
    else:  # a 3-day streak: the two days before, today's live right after the activation
        past = [now - timedelta(days=2), now - timedelta(days=1)]
        options = {"required": 3, "kind": "streak"}
        start = now - timedelta(days=3)
    for at in past:
        record(config, user, at)
    rule = draft_rule(start=start, **options)

    run = score_rule_activate_with_backfill(rule=rule)  # the admin's "Activate and award past completions"
    during = live(user)  # within the countdown: the worker leaves the rule to the run
    assert not decided_by(during, rule)
    run = backfill_run_execute(run_id=run.pk)

    assert run.status == BackfillRun.Status.DONE, run.error
    assert list(ScoreRecord.objects.filter(rule=rule, kind="award").values_list("trade_amount", flat=True)) == [5]
    assert decided_by(during, rule)
    # What the dry run replays over the same completions, the run wrote.
    dry = rule_dry_run(rule=rule, since=None)
    assert (run.completions, run.counted, run.awards, run.points) == (
        dry.tally.completions,
        dry.tally.counted,
        dry.tally.awards,
        dry.tally.points,
    )
    assert awarded_per_user(rule) == dry.tally.per_user
    # Done: the next live completion is the workers' again.
    after = live(user, now + timedelta(seconds=1))
    assert decided_by(after, rule)
    call_command("verify_ledger")


def test_the_catch_up_pass_decides_a_completion_a_stale_worker_recorded_after_the_runs_last_page(queued_only, monkeypatch):
    config = TaskConfigFactory(task_type="post")
    user = UserFactory()
    now = timezone.now()
    record(config, user, now - timedelta(minutes=10))
    rule = draft_rule(start=now - timedelta(hours=1), required=2)
    run = score_rule_activate_with_backfill(rule=rule)
    scheduled = []
    monkeypatch.setattr(rule_tasks.catch_up_backfill, "apply_async", lambda *args, **kwargs: scheduled.append((args, kwargs)))
    assert rule_tasks.run_backfill(run.pk) == BackfillRun.Status.DONE
    assert scheduled == [(((run.pk,),), {"countdown": settings_delay()})]
    assert not ScoreRecord.objects.filter(rule=rule).exists()  # 1 of 2
    # After the run's last page, a worker whose cache still leaves the rule out records one more.
    stale = record(config, user, timezone.now())

    assert rule_tasks.catch_up_backfill(run.pk) == "1 completions caught up"

    awards = ScoreRecord.objects.filter(rule=rule, kind="award")
    assert list(awards.values_list("completion_id", flat=True)) == [stale]
    row = UserScoreInfo.objects.get(user=user, achievement_type=rule)
    assert (row.achievement_amount_now, row.awards_in_period) == (2, 1)
    run.refresh_from_db()
    assert (run.completions, run.counted, run.awards, run.points) == (2, 2, 1, 5)
    assert rule_tasks.catch_up_backfill(run.pk) == "0 completions caught up"  # twice: nothing more
    assert awards.count() == 1
    # run_backfill delivered again (its worker died after the run was done): it queues the catch-up again.
    assert "already" in rule_tasks.run_backfill(run.pk)
    assert len(scheduled) == 2
    call_command("verify_ledger")


def test_the_catch_up_pass_re_scores_a_completion_that_sorts_before_one_a_worker_counted(queued_only, monkeypatch):
    config = TaskConfigFactory(task_type="post")
    user = UserFactory()
    now = timezone.now()
    rule = draft_rule(start=now - timedelta(hours=2), required=1, award_limit_per_period=1)
    run = score_rule_activate_with_backfill(rule=rule)
    monkeypatch.setattr(rule_tasks.catch_up_backfill, "apply_async", lambda *args, **kwargs: None)
    assert rule_tasks.run_backfill(run.pk) == BackfillRun.Status.DONE
    # A stale worker recorded an earlier completion undecided; an up-to-date one awarded a later one.
    local = timezone.localtime(now)  # two moments of one local day, after the rule's start
    first = max(local.replace(hour=0, minute=1, second=0, microsecond=0), local - timedelta(minutes=90))
    earlier = record(config, user, first)
    later = live(user, first + timedelta(minutes=5))
    assert ScoreRecord.objects.filter(rule=rule, kind="award").values_list("completion_id", flat=True).get() == later.pk

    assert rule_tasks.catch_up_backfill(run.pk) == "1 completions caught up"

    # In time order the earlier one takes the day's one award (SPEC §6): the award moves to it.
    live_awards = ScoreRecord.objects.filter(rule=rule, kind="award").exclude(
        pk__in=ScoreRecord.objects.filter(reverses__isnull=False).values("reverses_id")
    )
    assert list(live_awards.values_list("completion_id", flat=True)) == [earlier]
    assert Account.objects.get(user=user).balance == 5
    assert rule_tasks.catch_up_backfill(run.pk) == "0 completions caught up"
    call_command("verify_ledger")


def settings_delay() -> float:
    return backfill.catch_up_delay_s()


def test_a_rule_activated_without_backfill_and_backfilled_later_awards_what_the_two_counts_add_up_to():
    config = TaskConfigFactory(task_type="post")
    user = UserFactory()
    now = timezone.now()
    before = record(config, user, now - timedelta(minutes=30))
    rule = draft_rule(start=now - timedelta(hours=1), required=2)
    score_rule_activate(rule=rule)
    during = live(user)  # decided live: 1 of 2, no award
    assert decided_by(during, rule) and not ScoreRecord.objects.filter(rule=rule).exists()

    run = score_rule_backfill(rule=rule)

    assert run.status == BackfillRun.Status.DONE, run.error
    # The earlier completion makes it 2 of 2 in the database: the award is given, on it.
    assert list(ScoreRecord.objects.filter(rule=rule, kind="award").values_list("completion_id", flat=True)) == [before]
    row = UserScoreInfo.objects.get(user=user, achievement_type=rule)
    assert (row.achievement_amount_now, row.awards_in_period) == (2, 1)
    call_command("verify_ledger")


def run_figures(output: str) -> tuple[int, ...]:
    found = re.search(r"(\d+) completions, (\d+) counted, (\d+) recipients, (\d+) awards, (\d+) points", output)
    assert found, output
    return tuple(int(n) for n in found.groups())


def dry_run_figures(output: str) -> tuple[int, ...]:
    found = re.search(r"completions read: (\d+)  counted: (\d+)\nrecipients: (\d+)  awards: (\d+)  points: (\d+)", output)
    assert found, output
    return tuple(int(n) for n in found.groups())


def test_the_backfill_commands_dry_run_reads_what_the_run_takes(capsys):
    people = seed_history(users=6, completions=200, days=6)
    rule = draft(RULES["count"] | {"number_limit_all": None}, days_back=5)
    score_rule_activate(rule=rule)
    # Decided live since the activation (users with no history, so no progress to add up): the run leaves them.
    for _ in range(3):
        assert decided_by(live(UserFactory()), rule)
    # And one recorded after the activation by a stale worker: the run takes it, so the dry run must.
    record(UserTaskRecord.objects.first().task, people[4], timezone.now() - timedelta(minutes=1), "late")
    taken = undecided_completions(rule=rule, window=backfill.Window.of(rule, since=None))

    call_command("backfill_rule", rule.score_type, "--dry-run")
    dry = capsys.readouterr().out
    assert "nothing was written" in dry
    call_command("backfill_rule", rule.score_type)
    ran = capsys.readouterr().out

    run = BackfillRun.objects.get(rule=rule)
    assert run.completions == len(taken)
    assert run_figures(ran) == (run.completions, run.counted, run.recipients, run.awards, run.points)
    assert dry_run_figures(dry) == run_figures(ran)
    assert run.awards > 0
    call_command("verify_ledger")


def test_a_live_completion_recorded_while_the_run_is_running_is_read_by_its_next_page(queued_only, monkeypatch):
    config = TaskConfigFactory(task_type="post")
    user = UserFactory()
    now = timezone.now()
    for minutes in (30, 20):
        record(config, user, now - timedelta(minutes=minutes))
    rule = draft_rule(start=now - timedelta(hours=1), required=3)
    run = score_rule_activate_with_backfill(rule=rule)
    monkeypatch.setattr(backfill, "BACKFILL_BATCH", 1)
    real = backfill._Run.write_batch
    during = []

    def then_a_live_one(self, rows):
        real(self, rows)
        if not during:
            during.append(live(user))  # between the run's pages: the worker leaves the rule to the run
            assert not decided_by(during[0], rule)

    monkeypatch.setattr(backfill._Run, "write_batch", then_a_live_one)
    run = backfill_run_execute(run_id=run.pk)

    assert run.status == BackfillRun.Status.DONE, run.error
    assert (run.completions, run.awards) == (3, 1)
    assert list(ScoreRecord.objects.filter(rule=rule, kind="award").values_list("completion_id", flat=True)) == [during[0].pk]
    call_command("verify_ledger")
