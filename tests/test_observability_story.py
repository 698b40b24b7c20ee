"""Issue 17's story: an operator scrapes /metrics while a real worker processes a member's sign-ins.

The web side (this test process, through the middleware) counts the events it hands off; a real
Celery worker, another process, counts what it processes, the awards by rule and point type, and
the event-to-ledger latency. In multiprocess mode the page adds both up, and the page parses with
prometheus_client's own text parser. The backlog gauge rises while the worker is stopped and
drains once it runs.
"""

import pytest
from django.urls import reverse

from apps.ledger.models import ScoreRecord
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory
from tests.tracking.test_metrics_page import TOKEN, scrape
from tests.workers import WorkerProcess, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.redis]


def figure(samples: dict, name: str, **labels) -> float:
    """A sample's value summed over the label sets that include `labels`; 0 when it is not on the page yet."""
    return sum(v for sample_labels, v in samples.get(name, []) if labels.items() <= sample_labels.items())


def test_counters_move_as_a_real_worker_processes_and_the_backlog_drains(client, settings, transactional_db):
    settings.JIFEN_HEALTH_TOKEN = TOKEN
    TaskConfigFactory(task_type="sign-in", interface_name=r"^/checkin/$", success_json_field="code", success_json_value="0")
    ScoreRuleFactory(task_type="sign-in", score_type="sign-in-daily", points=3, award_limit_per_period=1)
    members = [UserFactory(username=f"member{n}") for n in range(5)]
    before = scrape(client)

    # No worker yet: the sign-ins wait in the inbox, and the page says so.
    for member in members:
        client.force_login(member)
        assert client.post(reverse("checkin")).json()["code"] == 0
    waiting = scrape(client)
    assert (
        figure(waiting, "jifen_events_accepted_total", source="middleware")
        - figure(before, "jifen_events_accepted_total", source="middleware")
        == 5
    )
    assert figure(waiting, "jifen_inbox_backlog") >= 5

    worker = WorkerProcess()
    try:
        done = wait_until(lambda: ScoreRecord.objects.filter(user__in=members).count() == 5, timeout_s=30)
        assert done, "the worker did not post within 30 s:\n" + worker.log()

        def moved() -> dict | None:
            samples = scrape(client)
            processed = figure(samples, "jifen_events_processed_total") - figure(before, "jifen_events_processed_total")
            return samples if processed >= 5 else None

        after = wait_until(moved, timeout_s=10)
        assert after, "the worker's counters did not reach the page:\n" + worker.log()
    finally:
        worker.stop()

    def delta(name: str, **labels) -> float:
        return figure(after, name, **labels) - figure(before, name, **labels)

    assert delta("jifen_events_processed_total") == 5
    assert delta("jifen_awards_total", rule="sign-in-daily", point_type="points") == 5
    assert delta("jifen_points_awarded_total", rule="sign-in-daily", point_type="points") == 15
    assert delta("jifen_event_to_ledger_seconds_count") == 5  # each event's wait, observed by the worker
    assert figure(after, "jifen_inbox_backlog") == 0  # drained
    assert figure(after, "jifen_events_parked_total") == figure(before, "jifen_events_parked_total")
