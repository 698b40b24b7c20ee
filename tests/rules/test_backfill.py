"""Dry run and backfill: the dry run's figures are exactly what the backfill then awards, once."""

import json
import random
import threading
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count, Sum
from django.utils import timezone

from apps.ledger.models import ScoreRecord
from apps.rules.models import BackfillRun, CountedCompletion, RuleRecipient, ScoreRule, ScoreRuleObjectPoints, UserScoreInfo
from apps.rules.selectors.dry_run import rule_dry_run
from apps.rules.services.backfill import BackfillRefused, backfill_request, backfill_run_execute, score_rule_backfill
from apps.rules.services.workflow import score_rule_activate
from apps.tasks.models import UserTaskRecord
from apps.tasks.services import NewCompletion, completions_create
from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_process
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

RULES = {
    "count": {
        "kind": "count",
        "statistical_period": "day",
        "required_number_of_times": 2,
        "points": 3,
        "award_limit_per_period": 2,
        "number_limit_all": 6,
        "can_repeat": False,
    },
    "streak": {"kind": "streak", "statistical_period": "day", "required_number_of_times": 3, "points": 7},
    "cooldown": {
        "kind": "count",
        "statistical_period": "day",
        "required_number_of_times": 1,
        "points": 2,
        "cooldown": timedelta(hours=6),
        "cooldown_scope": "object",
    },
    "lifetime": {
        "kind": "count",
        "statistical_period": "none",
        "required_number_of_times": 1,
        "points": 10,
        "award_limit_per_period": 1,
    },
}


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch):
    """The command path waits JIFEN_RULES_REFRESH_S + STALE_BATCH_S before its catch-up pass: not in these tests."""
    monkeypatch.setattr("apps.rules.services.backfill.STALE_BATCH_S", 0.0)


def seed_history(*, users: int = 12, completions: int = 400, days: int = 14, seed: int = 6) -> list:
    """Random completions of `post` over the last `days` days, a few of them reversed; returns the users."""
    config = TaskConfigFactory(task_type="post")
    people = [UserFactory() for _ in range(users)]
    rng = random.Random(seed)
    now = timezone.now()
    ids = completions_create(
        completions=[
            NewCompletion(
                task_id=config.pk,
                user_id=rng.choice(people).pk,
                event_id=uuid.uuid4(),
                occurred_at=now - timedelta(seconds=rng.randrange(days * 86400)),
                business_id=rng.choice(["a", "b", "c", "big"]),
                location="10.0.0.1",
            )
            for _ in range(completions)
        ]
    )
    UserTaskRecord.objects.filter(pk__in=rng.sample(ids, min(10, len(ids) // 3))).update(reversed_at=now)
    return people


def draft(settings: dict, *, days_back: int = 10) -> ScoreRule:
    rule = ScoreRuleFactory(
        task_type="post",
        score_type="new-rule",
        status="editing",
        start_time=timezone.now() - timedelta(days=days_back),
        **settings,
    )
    ScoreRuleObjectPoints.objects.create(rule=rule, business_id="big", points=20)
    return rule


def awarded_per_user(rule: ScoreRule) -> dict[int, list[int]]:
    rows = (
        ScoreRecord.objects.filter(rule=rule, kind="award").values("user_id").annotate(points=Sum("trade_amount"), n=Count("id"))
    )
    return {row["user_id"]: [row["points"], row["n"]] for row in rows}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", sorted(RULES))
def test_the_backfill_awards_exactly_what_the_dry_run_showed_and_only_once(kind):
    seed_history()
    rule = draft(RULES[kind])
    dry = rule_dry_run(rule=rule, since=None)  # since the rule's start time, as the activation page shows it
    assert dry.tally.awards > 0 and dry.tally.completions < 390  # the window cut older completions off
    if kind == "cooldown":
        assert dry.tally.reasons["cooldown"] > 0

    score_rule_activate(rule=rule)
    run = score_rule_backfill(rule=rule)

    assert run.status == BackfillRun.Status.DONE, run.error
    assert awarded_per_user(rule) == dry.tally.per_user
    assert (run.completions, run.counted, run.awards, run.points, run.recipients) == (
        dry.tally.completions,
        dry.tally.counted,
        dry.tally.awards,
        dry.tally.points,
        dry.tally.recipients,
    )
    assert run.reasons == dict(dry.tally.reasons)
    assert CountedCompletion.objects.filter(rule=rule).count() == dry.tally.counted
    if rule.number_limit_all:
        rule.refresh_from_db()
        assert rule.recipients_count == RuleRecipient.objects.filter(rule=rule).count() == dry.tally.recipients
    # "Why no points?" finds the rule's decision on every completion it read.
    decided = [r for r in UserTaskRecord.objects.all() if any(d["rule_id"] == rule.pk for d in r.decisions)]
    assert len(decided) == dry.tally.completions

    # Twice: refused, nothing more awarded.
    with pytest.raises(BackfillRefused):
        score_rule_backfill(rule=rule)
    assert awarded_per_user(rule) == dry.tally.per_user
    call_command("verify_ledger")


@pytest.mark.django_db
def test_progress_left_by_the_backfill_goes_on_live():
    people = seed_history(users=3, completions=60, days=3)
    rule = draft(RULES["lifetime"] | {"award_limit_per_period": None, "required_number_of_times": 5}, days_back=5)
    score_rule_activate(rule=rule)
    score_rule_backfill(rule=rule)
    user = people[0]
    before = UserScoreInfo.objects.get(user=user, achievement_type=rule).achievement_amount_now
    event_process(event=Event(event_id=uuid.uuid4(), user_id=user.pk, task_type="post", occurred_at=timezone.now()))
    assert UserScoreInfo.objects.get(user=user, achievement_type=rule).achievement_amount_now == before + 1


@pytest.mark.django_db
def test_a_completion_a_stale_worker_recorded_after_activation_is_backfilled_and_one_decided_live_is_not():
    config = TaskConfigFactory(task_type="post")
    user = UserFactory()
    rule = draft({"kind": "count", "statistical_period": "none", "required_number_of_times": 1, "points": 4}, days_back=2)
    score_rule_activate(rule=rule)
    # Recorded after the activation by a worker whose rules cache had not seen it yet: no decision of the rule.
    (stale,) = completions_create(
        completions=[
            NewCompletion(task_id=config.pk, user_id=user.pk, event_id=uuid.uuid4(), occurred_at=timezone.now(), business_id="x")
        ]
    )
    live = uuid.uuid4()
    event_process(event=Event(event_id=live, user_id=user.pk, task_type="post", occurred_at=timezone.now(), business_id="y"))

    run = score_rule_backfill(rule=rule)

    assert run.status == BackfillRun.Status.DONE, run.error
    awards = ScoreRecord.objects.filter(rule=rule, kind="award")
    assert sorted(awards.values_list("completion__business_id", flat=True)) == ["x", "y"]
    assert run.awards == 1 and run.completions == 1
    assert [d["rule_id"] for d in UserTaskRecord.objects.get(pk=stale).decisions] == [rule.pk]
    assert [d["rule_id"] for d in UserTaskRecord.objects.get(event_id=live).decisions] == [rule.pk]


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["count", "cooldown", "streak"])
def test_the_dry_run_of_an_active_rule_agrees_with_what_the_workers_awarded(kind):
    TaskConfigFactory(task_type="post")
    rule = ScoreRuleFactory(task_type="post", score_type="live", **RULES[kind])
    people = [UserFactory() for _ in range(5)]
    rng = random.Random(2)
    now = timezone.now()
    times = sorted(now - timedelta(seconds=rng.randrange(3 * 86400)) for _ in range(120))
    for at in times:
        event_process(
            event=Event(
                event_id=uuid.uuid4(),
                user_id=rng.choice(people).pk,
                task_type="post",
                occurred_at=at,
                business_id=rng.choice("abc"),
            )
        )
    dry = rule_dry_run(rule=rule, since=now - timedelta(days=4))
    assert dry.tally.per_user == awarded_per_user(rule)


@pytest.mark.django_db
def test_a_failed_run_is_resumed_after_what_it_wrote(monkeypatch):
    seed_history()
    rule = draft(RULES["count"])
    dry = rule_dry_run(rule=rule, since=None)
    score_rule_activate(rule=rule)
    monkeypatch.setattr("apps.rules.services.backfill.BACKFILL_BATCH", 40)
    import apps.rules.services.backfill as backfill

    calls = {"n": 0}
    real = backfill._Run.write_batch

    def failing(self, rows):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("database went away")
        return real(self, rows)

    monkeypatch.setattr(backfill._Run, "write_batch", failing)
    first = score_rule_backfill(rule=rule)
    assert first.status == BackfillRun.Status.FAILED and "went away" in first.error
    assert ScoreRecord.objects.filter(rule=rule).count() > 0
    second = score_rule_backfill(rule=rule)
    assert second.status == BackfillRun.Status.DONE
    assert awarded_per_user(rule) == dry.tally.per_user


@pytest.mark.django_db
def test_only_active_rules_are_backfilled():
    seed_history(users=2, completions=10)
    rule = draft(RULES["count"])
    with pytest.raises(BackfillRefused):
        backfill_request(rule=rule)
    with pytest.raises(CommandError, match="only an active rule"):
        call_command("backfill_rule", "new-rule")


@pytest.mark.django_db
class TestCommands:
    def test_simulate_prints_the_figures_and_writes_nothing(self, capsys):
        seed_history()
        rule = draft(RULES["count"])
        since = (timezone.now() - timedelta(days=30)).date().isoformat()
        call_command("simulate_rule", "new-rule", "--since", since, "--json", "--top", "3")
        figures = json.loads(capsys.readouterr().out)
        dry = rule_dry_run(rule=rule, since=None)
        assert (figures["awards"], figures["points"], figures["recipients"]) == (
            dry.tally.awards,
            dry.tally.points,
            dry.tally.recipients,
        )
        assert len(figures["top"]) == 3 and figures["top"][0]["points"] >= figures["top"][-1]["points"]
        call_command("simulate_rule", "new-rule", "--since", since)
        out = capsys.readouterr().out
        assert "completions by reason" in out and "top users" in out
        assert not ScoreRecord.objects.exists() and not UserScoreInfo.objects.exists()

    @pytest.mark.parametrize(
        "args, message",
        [
            (["nope", "--since", "2026-01-01"], "no rule has the code"),
            (["new-rule", "--since", "yesterday"], "not a date or time"),
            (["new-rule", "--since", "2026-02-30"], "not a date or time"),
            (["new-rule", "--since", "2026-02-01", "--until", "2026-01-01"], "must be after"),
        ],
    )
    def test_simulate_refuses_bad_arguments(self, args, message):
        seed_history(users=1, completions=3)
        draft(RULES["count"])
        with pytest.raises(CommandError, match=message):
            call_command("simulate_rule", *args)

    def test_backfill_command_dry_run_then_run_then_again(self, capsys):
        seed_history()
        rule = draft(RULES["count"])
        score_rule_activate(rule=rule)
        call_command("backfill_rule", "new-rule", "--dry-run")
        assert "nothing was written" in capsys.readouterr().out
        assert not ScoreRecord.objects.exists()
        call_command("backfill_rule", "new-rule")
        assert "done" in capsys.readouterr().out
        awarded = awarded_per_user(rule)
        assert awarded
        call_command("backfill_rule", "new-rule")  # once done, it says so and awards nothing
        assert "already" in capsys.readouterr().out
        assert awarded_per_user(rule) == awarded
        with pytest.raises(CommandError, match="no rule has the code"):
            call_command("backfill_rule", "nope")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_backfills_award_once():
    seed_history(users=20, completions=600)
    rule = draft(RULES["count"])
    dry = rule_dry_run(rule=rule, since=None)
    score_rule_activate(rule=rule)
    runs = [backfill_request(rule=rule)]
    with pytest.raises(BackfillRefused):
        backfill_request(rule=rule)  # a second request, while the first is queued
    barrier = threading.Barrier(3)
    outcomes = []

    def execute(action):
        try:
            barrier.wait()
            outcomes.append(action())
        except BackfillRefused as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=execute, args=(lambda: backfill_run_execute(run_id=runs[0].pk),)),
        threading.Thread(target=execute, args=(lambda: backfill_run_execute(run_id=runs[0].pk),)),  # the same run, twice
        threading.Thread(target=execute, args=(lambda: score_rule_backfill(rule=rule),)),  # and a new request
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert any(isinstance(o, BackfillRun) and o.status == "done" for o in outcomes), outcomes
    assert awarded_per_user(rule) == dry.tally.per_user
    assert ScoreRecord.objects.filter(rule=rule).values("completion_id").distinct().count() == dry.tally.awards
    call_command("verify_ledger")
