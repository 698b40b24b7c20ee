"""The rule admin's dry run page and the Activate step that offers a backfill."""

import pytest
from django.urls import reverse

from apps.ledger.models import ScoreRecord
from apps.rules.models import BackfillRun, ScoreRule
from config.celery import app as celery_app
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
