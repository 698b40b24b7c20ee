"""The plain admin: workflow actions call the services, frozen fields hold, the ledger is read-only."""

import pytest
from django.urls import reverse

from apps.ledger.models import ScoreRecord
from apps.rules.models import ScoreRule
from tests.factories import ScoreRuleFactory, TaskConfigFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft():
    TaskConfigFactory(task_type="post")
    return ScoreRuleFactory(task_type="post", score_type="post-each", points=5, status="editing")


def test_activate_action_runs_the_service_and_records_the_operator(client, operator, draft):
    url = reverse("admin:rules_scorerule_changelist")
    response = client.post(url, {"action": "activate", "_selected_action": [draft.pk], "post": "yes"}, follow=True)
    assert "1 done." in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == "active"
    assert draft.history.latest().history_user == operator


def test_refused_action_says_why(client, operator, draft):
    url = reverse("admin:rules_scorerule_changelist")
    response = client.post(url, {"action": "retire", "_selected_action": [draft.pk], "post": "yes"}, follow=True)
    assert "only one that is active can become retired" in response.content.decode()
    assert ScoreRule.objects.get(pk=draft.pk).status == "editing"


def test_frozen_fields_of_an_active_rule_cannot_be_changed_in_the_form(client, operator, draft):
    draft.status = "active"
    draft.save()
    url = reverse("admin:rules_scorerule_change", args=[draft.pk])
    page = client.get(url).content.decode()
    assert 'name="points"' not in page
    client.post(url, {"score_desc": "Each post", "points": 500, "status": "active", "end_time_0": "", "end_time_1": ""})
    draft.refresh_from_db()
    assert draft.points == 5


def test_ledger_entries_cannot_be_changed_or_deleted_in_the_admin(client, operator):
    from django.db import transaction

    from apps.ledger.services.entries import account_lock, ledger_post_entry

    with transaction.atomic():
        entry = ledger_post_entry(account=account_lock(user_id=operator.pk), amount=5, kind="award", idempotency_key="k")
    assert client.get(reverse("admin:ledger_scorerecord_change", args=[entry.pk])).status_code == 200
    assert client.post(reverse("admin:ledger_scorerecord_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:ledger_scorerecord_add")).status_code == 403
    assert ScoreRecord.objects.count() == 1


def test_admin_pages_render(client, operator, draft):
    for name in ("tasks_taskconfig", "rules_scorerule", "rules_userscoreinfo", "ledger_account", "ledger_scorerecord"):
        assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200, name
