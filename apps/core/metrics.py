"""Jifen's own Prometheus counters and histogram (issue 17), each created once, here, at import.

The services count what they did where they did it (docs/production.md, "What the counters
count"). What changes the database is counted with `after_commit`, so a batch or a request that
rolls back counts nothing. The objects live in prometheus_client's default registry; with
PROMETHEUS_MULTIPROC_DIR set (config/settings.py sets it before anything imports
prometheus_client) the same objects write to per-process files that `/metrics` sums.

Labels are low-cardinality by contract: a source, a reason or outcome code, a rule's code, a point
type's code. Never a user id or an event id.
"""

from collections.abc import Callable

from django.db import transaction
from prometheus_client import Counter, Histogram

# Where an event comes from (`jifen_events_accepted_total{source}`).
SOURCE_MIDDLEWARE = "middleware"
SOURCE_API = "api"
SOURCE_INGEST = "ingest"

EVENTS_ACCEPTED = Counter(
    "jifen_events_accepted_total",
    "Events accepted and handed off (the inbox, the outbox, or processed at once by ingest_events), by source.",
    ["source"],
)
EVENTS_REFUSED = Counter(
    "jifen_events_refused_total",
    "Events refused (api: per refused request, by its error code; ingest: per bad line), by source and reason.",
    ["source", "reason"],
)
EVENTS_PROCESSED = Counter("jifen_events_processed_total", "Completions recorded by the pipeline (committed).")
EVENTS_DUPLICATE = Counter("jifen_events_duplicate_total", "Events skipped by the pipeline as recorded already.")
EVENTS_RESCORED = Counter(
    "jifen_events_rescored_total", "User-and-rule re-scores (committed), by cause: late or reversal.", ["cause"]
)
EVENTS_PARKED = Counter("jifen_events_parked_total", "Events parked as failed (committed).")

# From under a second (a worker keeping up) to ten minutes (a broker outage draining): past the
# last bucket only +Inf says more, and an operator looking at that is looking at the backlog anyway.
EVENT_TO_LEDGER_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
EVENT_TO_LEDGER = Histogram(
    "jifen_event_to_ledger_seconds",
    "Seconds from an event's acceptance (the response, the API's receipt) to the commit of the batch that recorded it.",
    buckets=EVENT_TO_LEDGER_BUCKETS_S,
)

AWARDS = Counter("jifen_awards_total", "Award entries posted (committed), by rule and point type.", ["rule", "point_type"])
POINTS_AWARDED = Counter(
    "jifen_points_awarded_total", "Points of the award entries posted (committed), by rule and type.", ["rule", "point_type"]
)
POINTS_REVERSED = Counter(
    "jifen_points_reversed_total",
    "Points taken back by reversal entries (committed; a positive number), by rule and point type.",
    ["rule", "point_type"],
)

REDEMPTIONS = Counter(
    "jifen_redemptions_total", "Redemptions, by outcome: redeemed, refused_<code>, fulfilled, cancelled.", ["outcome"]
)
HOLDS = Counter("jifen_holds_total", "Hold calls, by outcome: placed, refused, captured, released, expired.", ["outcome"])

EXPIRY_RUNS = Counter("jifen_expiry_runs_total", "Expiry runs completed (points_expire, not dry runs).")
POINTS_EXPIRED = Counter("jifen_points_expired_total", "Points expired (committed), by point type.", ["point_type"])

WEBHOOK_DELIVERIES = Counter(
    "jifen_webhook_deliveries_total", "Webhook delivery attempts recorded, by outcome: delivered, retrying, failed.", ["outcome"]
)

# Bound once: the request path's one increment is then a lock and an add, not a label lookup too.
ACCEPTED_FROM_MIDDLEWARE = EVENTS_ACCEPTED.labels(source=SOURCE_MIDDLEWARE)


def after_commit(count: Callable[[], None]) -> None:
    """Run `count` once the current transaction commits (at once outside one); nothing if it rolls back.

    Robust: should counting ever raise, Django logs it and the caller's commit stands.
    """
    transaction.on_commit(count, robust=True)


def counts_add(metric: Counter, counts: dict[str, int | float], *, label: str) -> None:
    """Add each of `counts` ({label value: amount}) to `metric`'s child of that `label` value; skips zeros."""
    for value, amount in counts.items():
        if amount:
            metric.labels(**{label: value}).inc(amount)
