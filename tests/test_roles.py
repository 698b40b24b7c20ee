"""Roles from the migration (SPEC §7, G9): each group sees and may do only its job; logins are throttled."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from apps.rules.models import ScoreRule
from apps.tasks.models import TaskConfig
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db

AUDITED_APPS = {
    *("tasks", "rules", "ledger", "tracking", "community", "rewards", "notifications"),
    *("django_celery_results", "django_celery_beat"),
}


def perms(group_name: str) -> set[str]:
    group = Group.objects.get(name=group_name)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def member(group_name: str, username: str):
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def draft():
    TaskConfigFactory(task_type="post")
    return ScoreRuleFactory(task_type="post", score_type="post-each", points=5, status="editing")


class TestGroupsAfterMigrate:
    def test_rule_editors(self):
        assert perms("rule editors") == {
            "tasks.add_taskconfig",
            "tasks.change_taskconfig",
            "tasks.view_taskconfig",
            "rules.add_scorerule",
            "rules.change_scorerule",
            "rules.view_scorerule",
            "rules.add_scoreruleobjectpoints",
            "rules.change_scoreruleobjectpoints",
            "rules.delete_scoreruleobjectpoints",
            "rules.view_scoreruleobjectpoints",
            "rewards.add_rewarditem",
            "rewards.change_rewarditem",
            "rewards.view_rewarditem",
            # A rule names the point type it awards.
            "ledger.view_pointtype",
            "ledger.view_level",
            # Badges are authored with the rules that grant them (deleted by a superuser only).
            *(f"rules.{action}_badge" for action in ("add", "change", "view")),
            "rules.view_badgeaward",
        }

    def test_rule_approvers(self):
        assert perms("rule approvers") == {
            "tasks.view_taskconfig",
            "tasks.put_in_use_taskconfig",
            "tasks.deprecate_taskconfig",
            "rules.view_scorerule",
            "rules.activate_scorerule",
            "rules.retire_scorerule",
            "rules.view_scoreruleobjectpoints",
            "rules.view_backfillrun",
            "rules.view_badge",
            "rules.view_badgeaward",
            "rewards.view_rewarditem",
            "rewards.activate_rewarditem",
            "rewards.retire_rewarditem",
            # A type's expiry and whether it can be spent decide what points are worth (docs/operators.md, Roles).
            *(f"ledger.{action}_{model}" for model in ("pointtype", "level") for action in ("add", "change", "delete", "view")),
        }

    def test_ledger_operators(self):
        assert perms("ledger operators") == {
            "ledger.view_account",
            "ledger.view_scorerecord",
            "ledger.view_adjustment",
            "ledger.add_adjustment",
            "ledger.approve_adjustment",
            "ledger.view_leaderboardtotal",
            "ledger.view_pointtype",
            "ledger.view_level",
            "rules.view_scorerule",
            "rules.view_userscoreinfo",
            "rules.view_badge",
            "rules.view_badgeaward",
            "tasks.view_usertaskrecord",
            "rewards.view_redemption",
            "rewards.fulfil_redemption",
            "rewards.view_hold",
        }

    def test_auditors_may_view_every_model_of_ours_and_celerys_and_nothing_else(self):
        granted = perms("auditors")
        every_view = {
            f"{p.content_type.app_label}.{p.codename}"
            for p in Permission.objects.filter(content_type__app_label__in=AUDITED_APPS, codename__startswith="view_")
        }
        assert granted == every_view
        celery = {"django_celery_results.view_taskresult", "django_celery_beat.view_periodictask"}
        assert {"ledger.view_scorerecord", *celery} <= granted
        assert {app for app in (name.split(".")[0] for name in granted)} == AUDITED_APPS


class TestAuditor:
    def test_sees_every_changelist_and_the_dashboard(self, client, draft):
        client.force_login(member("auditors", "audrey"))
        for model in admin.site._registry:
            if model._meta.app_label not in AUDITED_APPS:
                continue
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
            assert client.get(url).status_code == 200, url
        assert 'id="figure-points-today"' in client.get(reverse("admin:index")).content.decode()

    def test_cannot_add_or_change_anything(self, client, draft):
        client.force_login(member("auditors", "audrey"))
        config = TaskConfig.objects.get(task_type="post")
        assert client.get(reverse("admin:rules_scorerule_add")).status_code == 403
        assert client.get(reverse("admin:tasks_taskconfig_add")).status_code == 403
        assert client.get(reverse("admin:community_post_add")).status_code == 403
        response = client.post(reverse("admin:tasks_taskconfig_change", args=[config.pk]), {"task_desc": "changed"})
        assert response.status_code == 403
        assert client.post(reverse("admin:rules_scorerule_delete", args=[draft.pk]), {"post": "yes"}).status_code == 403
        client.post(
            reverse("admin:rules_scorerule_changelist"), {"action": "activate", "_selected_action": [draft.pk], "post": "yes"}
        )
        draft.refresh_from_db()
        assert draft.status == "editing"
        assert TaskConfig.objects.get(pk=config.pk).task_desc == ""


class TestRuleWorkflowRoles:
    def activate(self, client, rule):
        url = reverse("admin:rules_scorerule_changelist")
        return client.post(url, {"action": "activate", "_selected_action": [rule.pk], "post": "yes"}, follow=True)

    def test_a_rule_editor_edits_drafts_but_cannot_activate(self, client, draft):
        client.force_login(member("rule editors", "eddie"))
        changelist = client.get(reverse("admin:rules_scorerule_changelist")).content.decode()
        assert 'value="copy_as_draft"' in changelist and 'value="activate"' not in changelist
        assert client.get(reverse("admin:rules_scorerule_add")).status_code == 200

        self.activate(client, draft)
        draft.refresh_from_db()
        assert draft.status == "editing"

    def test_a_rule_approver_activates_and_retires_but_cannot_edit(self, client, draft):
        approver = member("rule approvers", "abby")
        client.force_login(approver)
        response = self.activate(client, draft)
        assert "1 done." in response.content.decode()
        draft.refresh_from_db()
        assert draft.status == "active"
        assert draft.history.latest().history_user == approver

        url = reverse("admin:rules_scorerule_change", args=[draft.pk])
        assert client.post(url, {"score_desc": "new text"}).status_code == 403
        assert client.get(reverse("admin:rules_scorerule_add")).status_code == 403

        client.post(
            reverse("admin:rules_scorerule_changelist"), {"action": "retire", "_selected_action": [draft.pk], "post": "yes"}
        )
        assert ScoreRule.objects.get(pk=draft.pk).status == "retired"

    def test_task_config_workflow_follows_the_same_roles(self, client):
        config = TaskConfigFactory(task_type="share", status="editing")
        url = reverse("admin:tasks_taskconfig_changelist")
        client.force_login(member("rule editors", "eddie"))
        client.post(url, {"action": "put_in_use", "_selected_action": [config.pk], "post": "yes"})
        assert TaskConfig.objects.get(pk=config.pk).status == "editing"
        client.force_login(member("rule approvers", "abby"))
        client.post(url, {"action": "put_in_use", "_selected_action": [config.pk], "post": "yes"})
        assert TaskConfig.objects.get(pk=config.pk).status == "in_use"


def test_a_ledger_operator_sees_the_ledger_but_not_the_rules_authoring(client):
    from apps.ledger.models import Adjustment

    operator = member("ledger operators", "lee")
    client.force_login(operator)
    assert client.get(reverse("admin:ledger_scorerecord_changelist")).status_code == 200
    assert operator.has_perms(["ledger.add_adjustment", "ledger.approve_adjustment"])
    if Adjustment in admin.site._registry:  # the adjustments admin comes with the ledger's branch
        assert client.get(reverse("admin:ledger_adjustment_add")).status_code == 200
    assert client.get(reverse("admin:tasks_taskconfig_changelist")).status_code == 403
    assert client.get(reverse("admin:rules_scorerule_add")).status_code == 403


class TestLoginThrottling:
    def login(self, client, username, password, address="10.1.2.3"):
        return client.post(
            reverse("admin:login"), {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=address
        )

    def test_locked_after_five_failures_even_with_the_right_password(self, client, settings):
        assert settings.AXES_ENABLED and settings.AXES_FAILURE_LIMIT == 5
        UserFactory(username="op", is_staff=True, is_superuser=True)
        for _ in range(4):
            response = self.login(client, "op", "wrong")
            assert response.status_code == 200
            assert "Please enter the correct username and password" in response.content.decode()
        locked = self.login(client, "op", "wrong")
        assert locked.status_code == 429
        text = locked.content.decode()
        assert "Too many failed logins: after 5 failed attempts, this account is locked from your address." in text
        assert "Try again in 15 minutes." in text

        refused = self.login(client, "op", "demo12345")
        assert refused.status_code == 429
        assert "_auth_user_id" not in client.session

    def test_the_lock_is_per_username_and_address(self, client):
        UserFactory(username="op", is_staff=True, is_superuser=True)
        UserFactory(username="other", is_staff=True, is_superuser=True)
        for _ in range(5):
            self.login(client, "op", "wrong")
        assert self.login(client, "op", "demo12345").status_code == 429
        assert self.login(client, "other", "demo12345").status_code == 302
        client.logout()
        assert self.login(client, "op", "demo12345", address="10.9.9.9").status_code == 302

    def test_a_success_resets_the_count(self, client):
        UserFactory(username="op", is_staff=True, is_superuser=True)
        for _ in range(4):
            self.login(client, "op", "wrong")
        assert self.login(client, "op", "demo12345").status_code == 302
        client.logout()
        for _ in range(4):
            assert self.login(client, "op", "wrong").status_code == 200
