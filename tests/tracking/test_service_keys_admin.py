"""Service keys in the admin: created with the secret shown once, revoked at once, seen but never changed by auditors."""

import hashlib
import hmac
import json
import time
import uuid

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from apps.tracking import handoff as handoff_module
from apps.tracking.models import ServiceKey
from apps.tracking.services.service_keys import service_key_create, service_key_revoke
from tests.factories import TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """Accepted events stop short of the broker: no message is left for a later test's worker."""
    monkeypatch.setattr(handoff_module.Handoff, "_publish", lambda self, payloads: None)


def post_event(client, key_id: str, secret: str):
    TaskConfigFactory(task_type="sign-in")
    UserFactory(username="alice")
    body = json.dumps(
        {"event_id": str(uuid.uuid4()), "user": "alice", "task_type": "sign-in", "occurred_at": "2026-11-20T09:00:00"}
    ).encode()
    stamp = str(int(time.time()))
    signature = hmac.new(secret.encode(), b"\n".join([stamp.encode(), b"POST", b"/api/events", body]), hashlib.sha256)
    headers = {"X-Jifen-Key": key_id, "X-Jifen-Timestamp": stamp, "X-Jifen-Signature": signature.hexdigest()}
    return client.post("/api/events", data=body, content_type="application/json", headers=headers)


def pages(client, key: ServiceKey) -> str:
    """Every admin page about the key, concatenated."""
    urls = [
        reverse("admin:tracking_servicekey_changelist"),
        reverse("admin:tracking_servicekey_change", args=[key.pk]),
        reverse("admin:tracking_servicekey_history", args=[key.pk]),
    ]
    html = ""
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        html += response.content.decode()
    for historical in key.history.all():
        url = reverse("admin:tracking_servicekey_simple_history", args=[key.pk, historical.history_id])
        html += client.get(url).content.decode()
    return html


def test_creating_a_key_shows_its_secret_once(client, operator):
    response = client.post(reverse("admin:tracking_servicekey_add"), {"name": "shop", "task_types": "purchase, sign-in"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = ServiceKey.objects.get()
    html = response.content.decode()
    assert f'<code id="key-secret">{key.secret}</code>' in html
    assert f'<code id="key-id">{key.key_id}</code>' in html
    assert (key.name, key.task_types, key.created_by, key.is_active) == ("shop", "purchase,sign-in", operator, True)
    assert len(key.secret) >= 40

    assert key.secret not in pages(client, key)
    assert key.history.count() == 1 and not hasattr(key.history.first(), "secret")

    # The secret from that page signs requests.
    client.logout()
    assert post_event(client, key.key_id, key.secret).status_code == 202


def test_a_key_holds_points_only_when_created_to(client, operator):
    client.post(reverse("admin:tracking_servicekey_add"), {"name": "crm"})
    response = client.post(reverse("admin:tracking_servicekey_add"), {"name": "shop", "may_hold": "on"})
    assert 'id="key-may-hold"' in response.content.decode()
    assert dict(ServiceKey.objects.values_list("name", "may_hold")) == {"crm": False, "shop": True}
    key = ServiceKey.objects.get(name="shop")
    page = client.get(reverse("admin:tracking_servicekey_change", args=[key.pk])).content.decode()
    assert "may hold points" in page.lower() and 'name="may_hold"' not in page  # shown, never changed


def test_a_bad_form_creates_nothing(client, operator):
    response = client.post(reverse("admin:tracking_servicekey_add"), {"name": "", "task_types": "not a slug!"})
    assert response.status_code == 200
    assert "errornote" in response.content.decode()
    assert not ServiceKey.objects.exists()


def test_revoking_from_the_keys_page_takes_effect_at_once(client, operator):
    key, secret = service_key_create(name="shop")
    page = client.get(reverse("admin:tracking_servicekey_change", args=[key.pk])).content.decode()
    revoke_url = reverse("admin:tracking_servicekey_revoke", args=[key.pk])
    assert f'href="{revoke_url}"' in page
    asked = client.get(revoke_url).content.decode()  # the button opens the question; nothing is revoked yet
    assert f'action="{revoke_url}"' in asked and "is refused from now on" in asked and "cannot be undone" in asked
    assert ServiceKey.objects.get(pk=key.pk).is_active

    response = client.post(revoke_url, follow=True)
    assert "1 key revoked." in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None and key.revoked_by == operator
    assert revoke_url not in client.get(reverse("admin:tracking_servicekey_change", args=[key.pk])).content.decode()
    assert key.history.count() == 2

    client.logout()
    response = post_event(client, key.key_id, secret)
    assert response.status_code == 401 and response.json()["error"] == "revoked_key"


def test_revoke_action_on_the_list(client, operator):
    keys = [service_key_create(name=f"system {n}")[0] for n in range(3)]
    url = reverse("admin:tracking_servicekey_changelist")
    chosen = {"action": "revoke_selected", "_selected_action": [keys[0].pk, keys[1].pk]}
    asked = client.post(url, chosen).content.decode()
    assert asked.count("is refused from now on") == 2 and 'name="post" value="yes"' in asked
    assert all(k.is_active for k in ServiceKey.objects.all())  # nothing until the operator confirms
    client.post(url, {**chosen, "post": "yes"})
    assert [k.is_active for k in ServiceKey.objects.order_by("pk")] == [False, False, True]
    active = client.get(url, {"status": "active"}).content.decode()
    assert keys[2].key_id in active and keys[0].key_id not in active


def test_a_revoked_key_cannot_come_back_through_its_history(client, operator):
    key, secret = service_key_create(name="shop")
    active_version = key.history.get()
    service_key_revoke(key=key)
    url = reverse("admin:tracking_servicekey_simple_history", args=[key.pk, active_version.history_id])

    assert client.get(url).status_code == 200  # the old version may be read
    assert client.post(url, {"name": "shop"}).status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is not None
    client.logout()
    assert post_event(client, key.key_id, secret).json()["error"] == "revoked_key"


def test_keys_are_never_deleted(client, operator):
    key, _ = service_key_create(name="shop")
    assert client.get(reverse("admin:tracking_servicekey_delete", args=[key.pk])).status_code == 403
    assert ServiceKey.objects.filter(pk=key.pk).exists()


def test_auditors_see_keys_but_not_secrets_and_cannot_create_or_revoke(client):
    key, secret = service_key_create(name="shop")
    auditor = UserFactory(username="audrey", is_staff=True)
    auditor.groups.add(Group.objects.get(name="auditors"))
    client.force_login(auditor)

    html = pages(client, key)
    assert key.key_id in html and secret not in html
    assert 'id="revoke"' not in html
    assert client.get(reverse("admin:tracking_servicekey_add")).status_code == 403
    assert client.post(reverse("admin:tracking_servicekey_add"), {"name": "mine"}).status_code == 403
    assert client.post(reverse("admin:tracking_servicekey_revoke", args=[key.pk])).status_code == 403
    client.post(
        reverse("admin:tracking_servicekey_changelist"),
        {"action": "revoke_selected", "_selected_action": [key.pk], "post": "yes"},
    )
    key.refresh_from_db()
    assert key.is_active and ServiceKey.objects.count() == 1
