"""The webhook admin: endpoints with their secret shown once, deliveries with their attempts, the dashboard."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from apps.notifications import events
from apps.notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from apps.notifications.services.deliveries import webhook_deliveries_send, webhook_endpoint_create, webhook_endpoint_send_test
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def endpoint(**fields) -> WebhookEndpoint:
    made = webhook_endpoint_create(name="crm", url="http://127.0.0.1:9/hook", event_types=[events.POINTS_AWARDED])[0]
    if fields:
        WebhookEndpoint.objects.filter(pk=made.pk).update(**fields)
        made.refresh_from_db()
    return made


def auditor():
    user = UserFactory(username="audrey", is_staff=True)
    user.groups.add(Group.objects.get(name="auditors"))
    return user


class TestEndpoints:
    def test_created_in_the_admin_with_its_secret_shown_once(self, client, operator):
        types = [events.POINTS_AWARDED, events.LEVEL_REACHED]
        data = {"name": "crm", "url": "https://crm.example.com/hooks", "event_types": types}
        response = client.post(reverse("admin:notifications_webhookendpoint_add"), data)
        assert response.status_code == 200 and "no-store" in response["Cache-Control"]
        made = WebhookEndpoint.objects.get()
        assert (made.name, made.url, made.event_types, made.active) == ("crm", data["url"], data["event_types"], True)
        assert made.created_by == operator
        assert made.secret.startswith("whsec_") and made.secret in response.content.decode()
        # Never again: not on its page, not in the list.
        for url in (
            reverse("admin:notifications_webhookendpoint_change", args=[made.pk]),
            reverse("admin:notifications_webhookendpoint_changelist"),
            reverse("admin:notifications_webhookendpoint_history", args=[made.pk]),
        ):
            page = client.get(url)
            assert page.status_code == 200 and made.secret not in page.content.decode()

    @pytest.mark.parametrize(
        ("url", "types", "field"),
        [
            ("ftp://crm.example.com/", [events.POINTS_AWARDED], "url"),
            ("https://crm.example.com/", [], "event_types"),
            ("https://crm.example.com/", ["points.stolen"], "event_types"),
            ("https://crm.example.com/", [events.ENDPOINT_TEST], "event_types"),
        ],
    )
    def test_a_bad_url_or_event_types_are_refused(self, client, operator, url, types, field):
        data = {"name": "x", "url": url, "event_types": types}
        response = client.post(reverse("admin:notifications_webhookendpoint_add"), data)
        assert response.status_code == 200 and field in response.context["form"].errors
        assert not WebhookEndpoint.objects.exists()

    def test_the_change_form_edits_types_and_can_switch_it_off(self, client, operator):
        made = endpoint()
        url = reverse("admin:notifications_webhookendpoint_change", args=[made.pk])
        page = client.get(url).content.decode()
        assert 'type="checkbox"' in page and 'value="badge.earned"' in page
        client.post(url, {"name": "crm2", "url": made.url, "event_types": [events.BADGE_EARNED], "_save": "Save"})
        made.refresh_from_db()
        assert (made.name, made.event_types, made.active) == ("crm2", [events.BADGE_EARNED], False)

    def test_rotating_shows_the_new_secret_once(self, client, operator):
        made = endpoint()
        url = reverse("admin:notifications_webhookendpoint_rotate", args=[made.pk])
        assert made.secret not in client.get(url).content.decode()  # the question only
        response = client.post(url)
        new = WebhookEndpoint.objects.get(pk=made.pk).secret
        assert new != made.secret and new in response.content.decode()
        assert "no-store" in response["Cache-Control"]

    def test_the_list_says_failing_disabled_and_counts_deliveries(self, client, operator):
        failing = endpoint(failing_since=timezone.now() - timedelta(hours=2))
        disabled = webhook_endpoint_create(name="old-crm", url="http://127.0.0.1:9/x", event_types=[events.POINTS_AWARDED])[0]
        for _ in range(2):
            webhook_endpoint_send_test(endpoint=failing)
        webhook_endpoint_send_test(endpoint=disabled)
        WebhookDelivery.objects.filter(endpoint=disabled).update(status="failed")
        WebhookEndpoint.objects.filter(pk=disabled.pk).update(active=False, disabled_at=timezone.now(), disabled_reason="x")
        page = client.get(reverse("admin:notifications_webhookendpoint_changelist")).content.decode()
        assert "failing since" in page and "disabled at" in page
        assert f'?endpoint__id__exact={failing.pk}&amp;status__exact=pending">2<' in page
        assert f'?endpoint__id__exact={disabled.pk}&amp;status__exact=failed">1<' in page

    def test_send_a_test_event_and_enable_from_the_buttons(self, client, operator):
        made = endpoint()
        client.post(reverse("admin:notifications_webhookendpoint_send_test", args=[made.pk]))
        (delivery,) = WebhookDelivery.objects.all()
        assert delivery.event_type == "webhook.test" and json.loads(delivery.payload)["data"]["sent_by"] == "op"
        WebhookEndpoint.objects.filter(pk=made.pk).update(active=False, disabled_at=timezone.now(), disabled_reason="x")
        client.post(reverse("admin:notifications_webhookendpoint_enable", args=[made.pk]))
        made.refresh_from_db()
        assert made.active and made.disabled_at is None


class TestDeliveries:
    def test_the_page_shows_the_body_and_every_attempt(self, client, operator, settings):
        settings.JIFEN_WEBHOOK_BACKOFF_S = [0.0]
        delivery = webhook_endpoint_send_test(endpoint=endpoint())
        webhook_deliveries_send()
        webhook_deliveries_send()
        page = client.get(reverse("admin:notifications_webhookdelivery_change", args=[delivery.pk])).content.decode()
        assert 'id="delivery-body"' in page and "webhook.test" in page
        assert page.count("internal address") >= 2  # each attempt's error
        assert 'id="send-again-button"' in page
        listing = client.get(reverse("admin:notifications_webhookdelivery_changelist") + "?status__exact=pending")
        assert delivery.message_id in listing.content.decode()
        by_type = client.get(reverse("admin:notifications_webhookdelivery_changelist") + "?event_type=webhook.test")
        assert by_type.status_code == 200 and delivery.message_id in by_type.content.decode()

    def test_send_again_is_one_manual_attempt_now(self, client, operator):
        delivery = webhook_endpoint_send_test(endpoint=endpoint())
        WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed")
        client.post(reverse("admin:notifications_webhookdelivery_send_again", args=[delivery.pk]))
        (attempt,) = WebhookAttempt.objects.all()
        assert attempt.manual and attempt.status_code is None
        response = client.post(
            reverse("admin:notifications_webhookdelivery_changelist"),
            {"action": "send_again", "_selected_action": [delivery.pk], "post": "yes"},
            follow=True,
        )
        assert WebhookAttempt.objects.filter(manual=True).count() == 2
        assert "0 answered with success" in response.content.decode()

    def test_nobody_adds_changes_or_deletes_a_delivery(self, client, operator):
        delivery = webhook_endpoint_send_test(endpoint=endpoint())
        assert client.get(reverse("admin:notifications_webhookdelivery_add")).status_code == 403
        client.post(reverse("admin:notifications_webhookdelivery_delete", args=[delivery.pk]), {"post": "yes"})
        assert WebhookDelivery.objects.filter(pk=delivery.pk).exists()


def test_the_dashboard_says_an_endpoint_was_disabled_and_counts_deliveries(client, operator):
    made = endpoint()
    webhook_endpoint_send_test(endpoint=made)
    failed = webhook_endpoint_send_test(endpoint=made)
    WebhookDelivery.objects.filter(pk=failed.pk).update(status="failed")
    page = client.get(reverse("admin:index")).content.decode()
    assert 'id="webhooks-disabled"' not in page
    WebhookEndpoint.objects.filter(pk=made.pk).update(active=False, disabled_at=timezone.now(), disabled_reason="failing")
    page = client.get(reverse("admin:index")).content.decode()
    assert 'id="webhooks-disabled"' in page and "crm" in page
    assert reverse("admin:notifications_webhookendpoint_change", args=[made.pk]) in page
    figure = page.split('id="figure-webhooks-waiting"')[1]
    assert '<span class="value">1</span>' in figure.split("</li>")[0]
    figure = page.split('id="figure-webhooks-failed"')[1]
    assert '<span class="value">1</span>' in figure.split("</li>")[0]


def test_auditors_see_endpoints_without_the_secret_and_change_nothing(client):
    made = endpoint()
    client.force_login(auditor())
    page = client.get(reverse("admin:notifications_webhookendpoint_change", args=[made.pk])).content.decode()
    assert "crm" in page and made.secret not in page and 'id="rotate-secret"' not in page
    assert client.get(reverse("admin:notifications_webhookendpoint_add")).status_code == 403
    assert client.post(reverse("admin:notifications_webhookendpoint_rotate", args=[made.pk])).status_code == 403
    assert WebhookEndpoint.objects.get(pk=made.pk).secret == made.secret
    assert 'id="figure-webhooks-failed"' in client.get(reverse("admin:index")).content.decode()


def test_staff_without_a_role_sees_no_webhooks(client):
    client.force_login(UserFactory(username="staff", is_staff=True))
    assert 'id="figure-webhooks-failed"' not in client.get(reverse("admin:index")).content.decode()
    assert client.get(reverse("admin:notifications_webhookendpoint_changelist")).status_code == 403
