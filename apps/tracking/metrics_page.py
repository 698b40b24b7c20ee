"""GET /metrics's body: this host's processes' metrics, and the pipeline's shared state read at scrape time.

The counters and histograms (apps.core.metrics, django-prometheus's request and database metrics)
come from the multiprocess files of every process on this host (config.prometheus); Prometheus
scrapes every host and sums them. The gauges below are read from the database and Redis at scrape
time: they are the whole cluster's, the same on every host, so dashboards and alerts aggregate
them with max(), never sum().

A scrape costs what /healthz costs (health_report: SELECT 1, a Redis PING and a few LLEN/LINDEX,
the outbox's oldest row and count, the heartbeat row, the parked count) plus two counts on small
or partially indexed webhook tables. A failing part never fails the page: with Redis down the
database's gauges are still there, `jifen_broker_up` is 0 and `jifen_inbox_backlog` is missing
(a 0 would say the inbox is empty when it cannot be read).
"""

import logging
import math

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from apps.tracking.selectors import health_report
from config.prometheus import process_registry

logger = logging.getLogger(__name__)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class PipelineCollector(Collector):
    """The cluster-wide gauges, read from shared state on each scrape."""

    def collect(self):
        try:
            families = list(self._read())
        except Exception:
            # The database answered health_report's SELECT 1 but a later read failed: say so, and
            # let the rest of the page (the processes' metrics) go out.
            logger.exception("reading the pipeline's gauges for /metrics failed")
            families = [_gauge("jifen_database_up", "1 when the database answers, else 0.", 0)]
        yield from families

    def _read(self):
        from apps.notifications.models import WebhookDelivery, WebhookEndpoint

        health = health_report()
        checks = health.checks
        database_ok = checks.get("database") == "ok"
        yield _gauge("jifen_database_up", "1 when the database answers, else 0.", 1 if database_ok else 0)
        if not database_ok:
            return
        if "broker" in checks:
            yield _gauge("jifen_broker_up", "1 when the broker (Redis) answers, else 0.", 0 if "broker" in health.problems else 1)
        if "inbox_backlog" in checks:
            yield _gauge("jifen_inbox_backlog", "Events waiting in the Redis inbox, claimed batches in.", checks["inbox_backlog"])
        yield _gauge("jifen_outbox_backlog", "Events waiting in the outbox table for the broker.", checks["outbox_backlog"])
        oldest = checks.get("oldest_unprocessed_age_s")
        yield _gauge(
            "jifen_oldest_waiting_event_age_seconds",
            "Age of the oldest event waiting in the inbox or the outbox (0: none waits).",
            oldest or 0,
        )
        yield _gauge("jifen_parked_events", "Events parked as failed, waiting for an operator.", checks["failed_events"])
        heartbeat = checks.get("worker_heartbeat_age_s")
        yield _gauge(
            "jifen_worker_heartbeat_age_seconds",
            "Age of the workers' last heartbeat (+Inf: none yet).",
            math.inf if heartbeat is None else heartbeat,
        )
        yield _gauge(
            "jifen_webhook_deliveries_waiting",
            "Webhook deliveries waiting to be sent or retried.",
            WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).count(),
        )
        yield _gauge(
            "jifen_webhook_endpoints_disabled",
            "Webhook endpoints disabled for failing.",
            WebhookEndpoint.objects.filter(active=False, disabled_at__isnull=False).count(),
        )


_pipeline = CollectorRegistry()
_pipeline.register(PipelineCollector())


def metrics_page() -> tuple[bytes, str]:
    """The page's body and content type."""
    return generate_latest(process_registry()) + generate_latest(_pipeline), CONTENT_TYPE_LATEST
