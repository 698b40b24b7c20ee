"""The rule admin's dry run page and the Activate step that offers a backfill."""

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.ledger.models import ScoreRecord
from apps.rules.models import BackfillRun, ScoreRule
from config.celery import app as celery_app
from tests.factories import ScoreRuleFactory
from tests.rules.test_backfill import RULES, awarded_per_user, draft, seed_history
from tests.test_roles import member

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager():
    """Celery tasks run in the caller (the backfill the admin enqueues on commit)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def activate_url(rule) -> str:
    return reverse("admin:rules_scorerule_workflow", args=[rule.pk, "activate"])


def test_the_dry_run_page_shows_the_figures_and_writes_nothing(client, operator):
    seed_history()
    rule = draft(RULES["count"])
    url = reverse("admin:rules_scorerule_dry_run", args=[rule.pk])
    page = client.get(url).content.decode()
    assert 'name="since"' in page and "dry-run-awards" not in page  # the form, filled with 30 days back
    page = client.get(url, {"since": "2020-01-01"}).content.decode()
    assert 'id="dry-run-awards"' in page and 'id="dry-run-top"' in page
    assert 'class="jifen-reason-duplicate_object"' in page and "the rule does not repeat" in page
    assert not ScoreRecord.objects.exists()
    assert "dry-run" in client.get(reverse("admin:rules_scorerule_change", args=[rule.pk])).content.decode()
    bad = client.get(url, {"since": "2026-13-01"})
    assert bad.status_code == 200 and "errorlist" in bad.content.decode()


def test_activating_a_rule_that_started_in_the_past_asks_first(client, operator, eager, django_capture_on_commit_callbacks):
    seed_history()
    rule = draft(RULES["count"])
    page = client.post(activate_url(rule)).content.decode()
    assert 'id="activate-and-award"' in page and 'id="dry-run-points"' in page
    rule.refresh_from_db()
    assert rule.status == ScoreRule.Status.EDITING  # nothing done until the operator chooses

    with django_capture_on_commit_callbacks(execute=True):
        queued = client.post(activate_url(rule), {"choice": "backfill"}, follow=True).content.decode()
    assert "jifen-backfill-queued" in queued  # the worker starts it once the activation commits
    rule.refresh_from_db()
    assert rule.status == ScoreRule.Status.ACTIVE
    run = BackfillRun.objects.get(rule=rule)
    assert run.status == BackfillRun.Status.DONE and run.requested_by == operator
    assert run.awards == sum(n for _, n in awarded_per_user(rule).values()) > 0
    assert "jifen-backfill-done" in client.get(reverse("admin:rules_scorerule_change", args=[rule.pk])).content.decode()


def test_activate_only_awards_nothing_past(client, operator):
    seed_history()
    rule = draft(RULES["count"])
    client.post(activate_url(rule), {"choice": "activate"})
    rule.refresh_from_db()
    assert rule.status == ScoreRule.Status.ACTIVE
    assert not BackfillRun.objects.exists() and not ScoreRecord.objects.exists()


def test_a_rule_without_a_past_start_activates_at_once(client, operator):
    seed_history(users=2, completions=10)
    rule = draft(RULES["count"])
    rule.start_time = None
    rule.save()
    client.post(activate_url(rule))
    rule.refresh_from_db()
    assert rule.status == ScoreRule.Status.ACTIVE


def test_a_rule_editor_cannot_activate_with_a_backfill(client):
    seed_history(users=2, completions=10)
    rule = draft(RULES["count"])
    client.force_login(member("rule editors", "eddie"))
    assert client.post(activate_url(rule), {"choice": "backfill"}).status_code == 403
    assert client.post(activate_url(rule)).status_code == 403
    rule.refresh_from_db()
    assert rule.status == ScoreRule.Status.EDITING and not BackfillRun.objects.exists()
    # Auditors see the dry run (a read).
    client.force_login(member("auditors", "audrey"))
    assert client.get(reverse("admin:rules_scorerule_dry_run", args=[rule.pk]), {"since": "2020-01-01"}).status_code == 200


def figures(page: str) -> dict[str, str]:
    """The dry run page's figures and reasons, by id and class."""
    import re

    found = dict(re.findall(r'<td id="dry-run-(completions|counted|recipients|awards|points)">(\d+)</td>', page))
    found.update(re.findall(r'<tr class="jifen-reason-(\w+)"><th>[^<]*</th><td>(\d+)</td>', page))
    found["top"] = re.search(r'<table id="dry-run-top">.*?</table>', page, re.S).group(0)
    return found


def test_a_big_window_is_dry_run_by_a_worker_and_the_page_waits_for_its_figures(client, operator, settings, monkeypatch):
    import uuid

    from celery.result import AsyncResult

    from apps.rules import admin_dry_run
    from apps.rules.tasks import dry_run_rule

    seed_history()
    rule = draft(RULES["count"])
    url = reverse("admin:rules_scorerule_dry_run", args=[rule.pk])
    inline = client.get(url, {"since": "2020-01-01"}).content.decode()
    assert "dry-run-running" not in inline and int(figures(inline)["completions"]) > 100

    settings.JIFEN_DRY_RUN_INLINE_MAX = 100  # fewer than the window holds
    queued: list = []

    class Queue:  # the broker, without a worker: the task's arguments are kept, it does not run
        @staticmethod
        def apply_async(args, **options):
            queued.append((str(uuid.uuid4()), tuple(args)))
            return AsyncResult(queued[-1][0], app=celery_app)

    monkeypatch.setattr(admin_dry_run, "dry_run_rule", Queue)
    response = client.get(url, {"since": "2020-01-01"})
    job, args = queued[0]
    assert response.status_code == 302 and f"job={job}" in response["Location"] and "since=2020-01-01" in response["Location"]
    waiting = client.get(response["Location"]).content.decode()
    assert 'id="dry-run-running"' in waiting and '<meta http-equiv="refresh" content="2">' in waiting
    assert 'id="dry-run-awards"' not in waiting

    celery_app.backend.store_result(job, dry_run_rule(*args), "SUCCESS")  # what the worker keeps
    done = client.get(response["Location"]).content.decode()
    assert 'http-equiv="refresh"' not in done and "dry-run-running" not in done
    assert figures(done) == figures(inline)

    failed = str(uuid.uuid4())
    celery_app.backend.store_result(failed, ValueError("disk full"), "FAILURE")
    page = client.get(url, {"since": "2020-01-01", "job": failed}, follow=True).content.decode()
    assert "disk full" in page and 'id="dry-run-awards"' not in page and "dry-run-running" not in page
    other = ScoreRuleFactory(task_type="post", score_type="other-rule", status="editing")
    page = client.get(
        reverse("admin:rules_scorerule_dry_run", args=[other.pk]), {"since": "2020-01-01", "job": job}
    ).content.decode()
    assert 'id="dry-run-awards"' not in page and "not one of this rule" in page  # not shown as this rule's


def test_a_big_window_runs_in_place_when_tasks_run_eagerly(client, operator, settings, eager):
    seed_history()
    rule = draft(RULES["count"])
    url = reverse("admin:rules_scorerule_dry_run", args=[rule.pk])
    inline = figures(client.get(url, {"since": "2020-01-01"}).content.decode())
    settings.JIFEN_DRY_RUN_INLINE_MAX = 0
    response = client.get(url, {"since": "2020-01-01"})
    assert response.status_code == 200 and figures(response.content.decode()) == inline


def test_the_activate_step_links_to_the_dry_run_when_the_past_is_too_big_to_replay_there(client, operator, settings):
    seed_history()
    rule = draft(RULES["count"])
    settings.JIFEN_DRY_RUN_INLINE_MAX = 10
    page = client.post(activate_url(rule)).content.decode()
    assert 'id="dry-run-points"' not in page and 'id="activate-and-award"' in page
    since = timezone.localtime(rule.start_time).date().isoformat()
    assert f"{reverse('admin:rules_scorerule_dry_run', args=[rule.pk])}?since={since}" in page
    rule.refresh_from_db()
    assert rule.status == ScoreRule.Status.EDITING


def test_a_big_dry_run_with_the_broker_down_says_so_and_the_page_still_answers(client, operator, settings, monkeypatch):
    from apps.rules import admin_dry_run

    seed_history()
    rule = draft(RULES["count"])
    settings.JIFEN_DRY_RUN_INLINE_MAX = 1  # a worker's job

    class Down:
        @staticmethod
        def apply_async(args, **options):
            assert options.get("retry") is False  # an operator's request never waits on the broker's retries
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(admin_dry_run, "dry_run_rule", Down)
    response = client.get(reverse("admin:rules_scorerule_dry_run", args=[rule.pk]), {"since": "2020-01-01"})
    assert response.status_code == 200
    assert "The workers cannot be reached right now" in response.content.decode()


def test_a_backfill_the_broker_could_not_take_stays_queued_and_beat_sends_it_again(
    client, operator, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    from apps.rules.services.backfill import backfill_runs_resend
    from apps.rules.tasks import run_backfill

    seed_history()
    rule = draft(RULES["count"])
    sent: list = []

    def down(args, **options):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(run_backfill, "apply_async", down)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(activate_url(rule), {"choice": "backfill"}, follow=True)
    assert response.status_code == 200  # the operator's request did not fail
    run = BackfillRun.objects.get(rule=rule)
    assert run.status == BackfillRun.Status.QUEUED
    assert f"backfill run {run.pk} could not be sent to the workers" in caplog.text

    monkeypatch.setattr(run_backfill, "apply_async", lambda args, **options: sent.append(tuple(args)))
    assert backfill_runs_resend(older_than_s=3600) == []  # not yet: it may still be on its way
    assert backfill_runs_resend(older_than_s=0) == [run.pk]
    assert sent == [(run.pk,)]
