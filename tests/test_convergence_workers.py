"""G11 with real worker processes: late events, colliding accounts and an outage give what time order gives.

Real `celery worker` processes drain the Redis inbox while a fifth of the events arrive late, a
few deletions arrive before their posts, several drains hold batches of the same users at once
(so events are put back for later batches: the test counts them), and, midway, the broker is
unreachable for the web side, so events wait in the outbox and are flushed only after newer ones
were processed. Every user's net points per rule and period must equal the time-ordered replay of
the reference model (tests/rules/test_reference_model.py); `verify_ledger` must be clean.
"""

import io
import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import override_settings

from apps.tasks.models import UserTaskRecord
from apps.tracking.events import Event
from apps.tracking.handoff import handoff_reset
from apps.tracking.models import OutboxEvent
from apps.tracking.services import pipeline as services
from tests.factories import TaskConfigFactory, UserFactory
from tests.rules.test_reference_model import (
    REVERSED_TASK,
    REVERSING_TASK,
    RefEvent,
    RefRule,
    Scenario,
    app_count_progress,
    app_points,
    build_rules,
    reference,
)
from tests.test_faults import inbox, logs, workers  # noqa: F401 - fixtures
from tests.tracking.test_inbox import closed_port_url
from tests.workers import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SIGN_IN = "t1"
USERS = 6  # few users, many events each: concurrent batches hold the same accounts
DAYS = 21
TIMEOUT_S = 120

RULES = [
    RefRule(code="three-days", task=SIGN_IN, kind="streak", period="day", n=3, points=2),
    RefRule(code="posts-daily", task=REVERSED_TASK, kind="count", period="day", n=2, points=1, award_limit=2),
    RefRule(code="every-third-post", task=REVERSED_TASK, kind="count", period="none", n=3, points=5),
    RefRule(code="new-topics", task=REVERSED_TASK, kind="count", period="week", n=1, points=3, can_repeat=False),
]


def workload(rng: random.Random, tz: ZoneInfo) -> list[RefEvent]:
    """Each user's three weeks: most days a sign-in, a few posts, some deleted an hour later."""
    first = datetime(2026, 10, 1, tzinfo=tz)
    events: list[RefEvent] = []
    for user in range(USERS):
        for day in range(DAYS):
            start = first + timedelta(days=day)
            if rng.random() < 0.8:
                events.append(RefEvent(user, SIGN_IN, "", (start + timedelta(minutes=rng.randrange(1440))).astimezone(UTC)))
            for _ in range(rng.randrange(4)):
                at = start + timedelta(minutes=rng.randrange(1380))
                topic = str(rng.randrange(5))
                events.append(RefEvent(user, REVERSED_TASK, topic, at.astimezone(UTC)))
                if rng.random() < 0.15:
                    events.append(RefEvent(user, REVERSING_TASK, topic, (at + timedelta(minutes=59)).astimezone(UTC)))
    # Distinct instants, so that the time order needs no tie-breaker.
    seen, unique = set(), []
    for e in events:
        if e.at not in seen:
            seen.add(e.at)
            unique.append(e)
    return sorted(unique, key=lambda e: e.at)


def payload(users: list, index: int, ref: RefEvent, tz: ZoneInfo) -> dict:
    return Event(
        event_id=uuid.UUID(int=index + 1),
        user_id=users[ref.user].pk,
        task_type=ref.task,
        occurred_at=ref.at.astimezone(tz),
        business_id=ref.business_id,
    ).to_payload()


def test_late_events_put_backs_and_an_outage_give_what_time_order_gives(inbox, workers):  # noqa: F811
    rng = random.Random(11)
    tz = ZoneInfo(django_settings.TIME_ZONE)
    users = [UserFactory(username=f"g11-{i}") for i in range(USERS)]
    for task in (SIGN_IN, REVERSED_TASK, REVERSING_TASK):
        TaskConfigFactory(task_type=task, reverses=REVERSED_TASK if task == REVERSING_TASK else "")
    build_rules(RULES)
    events = workload(rng, tz)
    indexed = list(enumerate(events))

    # A fifth arrive late, after everything else; some deletions before the post they delete.
    late = set(rng.sample(range(len(indexed)), len(indexed) // 5))
    on_time = [item for i, item in enumerate(indexed) if i not in late]
    delayed = [indexed[i] for i in sorted(late)]
    rng.shuffle(delayed)
    third = len(on_time) // 3
    before_outage, during_outage, after_outage = on_time[:third], on_time[third : 2 * third], on_time[2 * third :] + delayed

    # A backlog before the workers start: their four drains then claim batches of the same six
    # users at once, and put events back for one another.
    for i, ref in before_outage:
        services.event_dispatch(event=Event.from_payload(payload(users, i, ref, tz)))
    started = workers(2, concurrency=2, env={"JIFEN_BATCH_SIZE": "10"})  # many small batches, claimed side by side

    # The web side cannot reach the broker: events wait in the outbox.
    with override_settings(CELERY_BROKER_URL=closed_port_url(), JIFEN_HANDOFF_TIMEOUT_S=0.1):
        handoff_reset()
        for i, ref in during_outage:
            services.event_dispatch(event=Event.from_payload(payload(users, i, ref, tz)))
    handoff_reset()
    assert OutboxEvent.objects.count() == len(during_outage)

    # The broker is back; the outbox is flushed only once the newer events are processed.
    for i, ref in after_outage:
        services.event_dispatch(event=Event.from_payload(payload(users, i, ref, tz)))
    recorded = len(before_outage) + len(after_outage)
    assert wait_until(lambda: UserTaskRecord.objects.count() >= recorded and inbox.backlog() == 0, timeout_s=TIMEOUT_S), (
        f"{UserTaskRecord.objects.count()}/{recorded} recorded\n{logs(started)}"
    )
    while services.outbox_flush():
        pass
    assert wait_until(lambda: UserTaskRecord.objects.count() == len(events) and inbox.backlog() == 0, timeout_s=TIMEOUT_S), (
        f"{UserTaskRecord.objects.count()}/{len(events)} recorded\n{logs(started)}"
    )

    put_back = sum(int(n) for n in re.findall(r"inbox: (\d+) events of users busy in another batch put back", logs(started)))
    print(f"[g11] {len(events)} events, {len(late)} late, {len(during_outage)} through the outbox, {put_back} put back")
    assert put_back > 0, "no batch met another's accounts: the test did not exercise put-backs\n" + logs(started)[-6000:]

    scenario = Scenario(django_settings.TIME_ZONE, USERS, [SIGN_IN, REVERSED_TASK, REVERSING_TASK], RULES, events)
    due, progress = reference(scenario, tz)
    assert app_points(users, RULES, tz) == due
    assert app_count_progress(users, tz) == progress
    call_command("verify_ledger", stdout=io.StringIO(), stderr=io.StringIO())
