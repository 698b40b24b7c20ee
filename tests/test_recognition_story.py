"""Recognition as a user and a receiving service live it (issue 16's story, SPEC §12), on the demo's own rules.

A member signs in every day for a week through the real pipeline. Each day the site's header
shows the new notifications: the day's coins and exp, on day 5 the level 入门, on day 7 the
7-day streak badge. Meanwhile the shop's CRM, subscribed to every event, is down: every attempt
fails. Once it is back, one sender run delivers every event it missed: each signed and
verifiable, with its id unchanged since the first attempt, one for every ledger entry.
"""

import json
import re
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import standardwebhooks
from django.core.management import call_command
from django.urls import reverse

from apps.ledger.models import ScoreRecord
from apps.notifications import events
from apps.notifications.models import Notification, WebhookAttempt, WebhookDelivery
from apps.notifications.services.deliveries import webhook_deliveries_send, webhook_endpoint_create
from apps.rules.models import BadgeAward
from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_process
from tests.factories import UserFactory
from tests.notifications.test_webhooks import Receiver

pytestmark = pytest.mark.django_db
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def demo(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    settings.JIFEN_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on loopback
    settings.JIFEN_WEBHOOK_TIMEOUT_S = 0.5
    call_command("loaddata", settings.BASE_DIR / "fixtures" / "demo.json", verbosity=0)


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


def header_count(client) -> int:
    html = client.get(reverse("home")).content.decode()
    found = re.search(r'id="notification-count"[^>]*>(\d+)<', html)
    return int(found.group(1)) if found else 0


def sign_in(user, day: datetime) -> None:
    event_process(event=Event(event_id=uuid.uuid4(), user_id=user.pk, task_type="sign-in", occurred_at=day))


def test_a_week_of_sign_ins_and_a_receiver_that_was_down(demo, receiver, client):
    mei = UserFactory(username="mei")
    client.force_login(mei)
    crm, secret = webhook_endpoint_create(name="crm", url=receiver.url, event_types=list(events.EVENT_TYPES))
    start = datetime.now(TZ).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=7)

    seen = 0
    for day in range(1, 8):
        sign_in(mei, start + timedelta(days=day - 1))
        kinds = [n.kind for n in Notification.objects.filter(user=mei, id__gt=seen).order_by("id")]
        seen = Notification.objects.filter(user=mei).order_by("-id").values_list("id", flat=True).first()
        expected = [events.POINTS_AWARDED]
        if day == 5:
            expected.append(events.LEVEL_REACHED)  # 50 exp: 入门
        if day == 7:
            expected.append(events.BADGE_EARNED)
        assert sorted(kinds) == sorted(expected), day
        assert header_count(client) == Notification.objects.filter(user=mei, read_at__isnull=True).count()
        # The receiver is down all week: every attempt fails, and the deliveries wait.
        result = webhook_deliveries_send()
        assert result.delivered == 0
    assert header_count(client) == 7 + 2
    assert list(BadgeAward.objects.filter(user=mei).values_list("badge__code", flat=True)) == ["streak-7"]

    page = client.get(reverse("notifications")).content.decode()
    assert "签到达人" in page or "7-day" in page.lower() or "streak" in page.lower()
    assert header_count(client) == 0  # seen: read

    # Back after an hour: the waiting deliveries are due again (their backoff ran out meanwhile).
    waiting = WebhookDelivery.objects.filter(endpoint=crm, status="pending")
    first_ids = dict(waiting.values_list("pk", "message_id"))
    assert WebhookAttempt.objects.filter(delivery__endpoint=crm).exists()
    waiting.update(next_attempt_at=waiting.first().created_at)
    receiver.start()
    while webhook_deliveries_send().delivered:
        pass
    assert not WebhookDelivery.objects.filter(endpoint=crm).exclude(status="delivered").exists()

    arrived = receiver.arrived()
    assert set(arrived) == set(first_ids.values())  # every id, unchanged since the first attempt
    verifier = standardwebhooks.Webhook(secret)
    bodies = []
    for requests in arrived.values():
        request = requests[0]
        verifier.verify(request["body"], request["headers"])  # raises on a bad signature or timestamp
        bodies.append(json.loads(request["body"]))
    entries = set(ScoreRecord.objects.filter(user=mei).values_list("pk", flat=True))
    assert {b["data"]["entry_id"] for b in bodies if b["type"] == events.POINTS_AWARDED} == entries
    assert [b["data"]["badge"] for b in bodies if b["type"] == events.BADGE_EARNED] == ["streak-7"]
    assert [b["data"]["level"] for b in bodies if b["type"] == events.LEVEL_REACHED] == ["Beginner"]
