"""Reading events from JSON Lines (`manage.py ingest_events`, SPEC §2) and from batches (`POST /api/events`)."""

import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.core import metrics
from apps.core.text import text_problem
from apps.tasks.models import TaskConfig
from apps.tracking.events import FIELD_MAX_LENGTHS, Event, EventError, text_check, time_parse
from apps.tracking.routing import RouteTable
from apps.tracking.services.pipeline import event_dispatch, event_log_fields, event_process

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Skipped:
    """A well-formed line that is no completion (task not in use, path routes nowhere, failed status)."""

    reason: str


class LineReader:
    """Turns one JSON line into an Event, a Skipped, or an EventError naming what is wrong."""

    def __init__(self, table: RouteTable):
        self.table = table
        self.tz = ZoneInfo(settings.TIME_ZONE)
        self.in_use = set(TaskConfig.objects.filter(status=TaskConfig.Status.IN_USE).values_list("task_type", flat=True))
        self.known = set(TaskConfig.objects.values_list("task_type", flat=True))
        self._user_ids: dict[str, int | None] = {}

    def _user_id(self, username: object) -> int:
        if not isinstance(username, str) or not username:
            raise EventError("user: missing (a username)")
        text_check("user", username, longest=_USERNAME_MAX_LENGTH)
        if username not in self._user_ids:
            found = get_user_model().objects.filter(username=username).values_list("pk", flat=True).first()
            self._user_ids[username] = found
        if self._user_ids[username] is None:
            raise EventError(f"user: no user named {username!r}")
        return self._user_ids[username]

    def _occurred_at(self, raw: object) -> datetime:
        parsed = time_parse("occurred_at", raw)
        if parsed is None:
            raise EventError("occurred_at: missing or not an ISO 8601 time")
        if parsed.tzinfo is None:
            # A naive time is local; on a repeated hour (autumn DST) it is the first occurrence (fold=0).
            parsed = parsed.replace(tzinfo=self.tz)
        # A completion from the future would open periods and streaks ahead of time; the margin
        # allows for another system's clock running a little ahead of ours.
        if parsed > timezone.now() + timedelta(seconds=settings.JIFEN_EVENT_CLOCK_SKEW_S):
            raise EventError("occurred_at: later than the server's clock (events report what already happened)")
        return parsed

    def prefetch_users(self, usernames: Iterable[object]) -> None:
        """Look up many usernames in one query (a batch), rather than one query each as `read` meets them."""
        wanted = {name for name in usernames if _plain_username(name) and name not in self._user_ids}
        if not wanted:
            return
        found = dict(get_user_model().objects.filter(username__in=wanted).values_list("username", "pk"))
        for name in wanted:
            self._user_ids[name] = found.get(name)

    def read(self, line: str) -> Event | Skipped:
        """One JSON line: an Event, a Skipped, or EventError naming what is wrong."""
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EventError(f"not valid JSON ({exc.msg})") from None
        except ValueError as exc:  # an integer of more than 4,300 digits
            raise EventError(f"not valid JSON ({exc})") from None
        except RecursionError:
            raise EventError("not valid JSON (nested too deep)") from None
        if not isinstance(data, dict):
            raise EventError("a line must be a JSON object")
        return self.read_data(data)

    def read_data(self, data: dict) -> Event | Skipped:
        """One event already decoded from JSON (a line, or an item of an API batch).

        Checks every field (`Event.from_payload`), the routed business id included; raises EventError.
        """
        if not isinstance(data, dict):
            raise EventError("an event must be a JSON object")
        try:
            uuid.UUID(str(data["event_id"]))
        except (KeyError, ValueError):
            raise EventError("event_id: missing or not a UUID") from None
        for name, longest in FIELD_MAX_LENGTHS.items():
            value = data.get(name)
            if isinstance(value, str):
                # Before any lookup or routing: a refused value is an error, never a skip.
                text_check(name, value, longest=longest)
        user_id = self._user_id(data.get("user"))
        occurred_at = self._occurred_at(data.get("occurred_at"))
        business_id = data.get("business_id", "")
        if business_id is None:
            business_id = ""
        if not isinstance(business_id, str | int) or isinstance(business_id, bool):
            raise EventError("business_id: must be a string")
        business_id = str(business_id)

        method, path, status = "", "", None
        task_type = data.get("task_type")
        if task_type is not None:
            if not isinstance(task_type, str) or not task_type:
                raise EventError("task_type: must be a non-empty string")
            if task_type not in self.in_use:
                reason = "not in use" if task_type in self.known else "unknown"
                return Skipped(f"task {task_type!r} is {reason}")
        else:
            method, path, status = data.get("method"), data.get("path"), data.get("status", 200)
            if not isinstance(method, str) or not isinstance(path, str) or not method or not path:
                raise EventError("either task_type, or method and path, is required")
            if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
                raise EventError("status: must be an HTTP status code")
            found = self.table.match(method, path)
            if found is None:
                return Skipped(f"{method.upper()} {path} routes to no task in use")
            # A line has no response body, so only the status part of the success check applies.
            if not found.route.status_ok(status):
                return Skipped(f"status {status} is not a success for task {found.route.task_type!r}")
            task_type = found.route.task_type
            if found.route.id_group_name:
                business_id = found.business_id
        payload = {
            "event_id": data["event_id"],
            "user_id": user_id,
            "task_type": task_type,
            "occurred_at": occurred_at.isoformat(),
            "business_id": business_id,
            "method": method.upper(),
            "path": path,
            "status": status,
            **_request_meta(data),
        }
        return Event.from_payload(payload)


# Django's username length; a longer name is no user's, and is refused before any query.
_USERNAME_MAX_LENGTH = 150


def _plain(value: str, *, longest: int) -> bool:
    """Whether `value` may go into a query or an answer at all (a NUL fails a query on PostgreSQL;
    a lone surrogate cannot be written as JSON)."""
    return len(value) <= longest and text_problem(value) is None


def _plain_username(name: object) -> bool:
    return isinstance(name, str) and bool(name) and _plain(name, longest=_USERNAME_MAX_LENGTH)


# Optional request meta of an event (SPEC §2); Event.from_payload checks their values.
_META_FIELDS = ("location", "country", "lang_type")


def _request_meta(data: dict) -> dict[str, object]:
    return {name: data[name] for name in _META_FIELDS if data.get(name) is not None}


@dataclass(frozen=True)
class BatchRead:
    """A batch of events read whole: what to hand off, what is no completion, and what is wrong (by index)."""

    events: list[Event]
    skipped: list[dict]  # {"index", "event_id", "reason"}
    errors: list[dict]  # {"index", "event_id", "field", "message"}


def read_batch(reader: LineReader, items: list, *, allowed_task_types: frozenset[str] = frozenset()) -> BatchRead:
    """Read every item of an API batch with `reader`, so that one bad item can refuse the whole batch.

    `allowed_task_types`, when not empty, is what the posting key may report: an event of another task type (named, or
    routed from its method and path) is an error, not a skip.
    """
    reader.prefetch_users(item.get("user") for item in items if isinstance(item, dict))
    events, skipped, errors = [], [], []
    for index, item in enumerate(items):
        event_id = item.get("event_id") if isinstance(item, dict) else None
        # Echoed back only when it is plain text (a lone surrogate cannot even be written as JSON).
        event_id = event_id if isinstance(event_id, str) and _plain(event_id, longest=64) else None
        try:
            result = reader.read_data(item)
        except EventError as exc:
            errors.append({"index": index, "event_id": event_id, "field": exc.field, "message": str(exc)})
            continue
        if isinstance(result, Skipped):
            skipped.append({"index": index, "event_id": event_id, "reason": result.reason})
        elif allowed_task_types and result.task_type not in allowed_task_types:
            message = f"task_type: this key may not report {result.task_type!r} events"
            errors.append({"index": index, "event_id": event_id, "field": "task_type", "message": message})
        else:
            events.append(result)
    return BatchRead(events=events, skipped=skipped, errors=errors)


# The fields a bad line's reason may name (`bad_<field>`): the event's own, so the label stays a short, fixed list.
_REASON_FIELDS = frozenset({"event_id", "user", "occurred_at", "status", *FIELD_MAX_LENGTHS})


def refusal_reason(exc: EventError) -> str:
    """A bad line's reason as a metric label: `bad_<field>` for a field of the event, else `bad_line`."""
    return f"bad_{exc.field}" if exc.field in _REASON_FIELDS else "bad_line"


def line_ingest(reader: LineReader, raw: bytes | str, *, use_broker: bool) -> Skipped | str | None:
    """Read one JSON line and process it (or, with `use_broker`, hand it to the workers).

    Returns the pipeline's outcome ("enqueued" with the broker), a Skipped, or None for a blank
    line; raises EventError for a bad line, and whatever the pipeline raises. Counts the line
    accepted (it reached the pipeline) or refused (by reason) in jifen_events_*_total{source="ingest"}.
    """
    try:
        event = _line_event(reader, raw)
    except EventError as exc:
        metrics.EVENTS_REFUSED.labels(source=metrics.SOURCE_INGEST, reason=refusal_reason(exc)).inc()
        raise
    if event is None or isinstance(event, Skipped):
        return event
    if use_broker:
        where = event_dispatch(event=event, source=metrics.SOURCE_INGEST)  # counts it accepted
        logger.info(
            "event %s for user %s (%s) handed to the %s",
            event.event_id,
            event.user_id,
            event.task_type,
            where,
            extra=event_log_fields(event, source=metrics.SOURCE_INGEST),
        )
        return "enqueued"
    try:
        outcome = event_process(event=event)
    except Exception:
        # Not recorded: refused as far as the file is concerned (the command names the line).
        metrics.EVENTS_REFUSED.labels(source=metrics.SOURCE_INGEST, reason="not_processed").inc()
        raise
    # Processed at once, committed: accepted and handed on in one go.
    metrics.EVENTS_ACCEPTED.labels(source=metrics.SOURCE_INGEST).inc()
    return str(outcome)


def _line_event(reader: LineReader, raw: bytes | str) -> Event | Skipped | None:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventError(f"not UTF-8 (byte {exc.start})") from None
    if not raw.strip():
        return None
    return reader.read(raw)
