"""Reading events from JSON Lines (`manage.py ingest_events`, SPEC §2)."""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.dateparse import parse_datetime

from apps.tasks.models import TaskConfig
from apps.tracking.events import Event, EventError
from apps.tracking.routing import RouteTable


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
        if username not in self._user_ids:
            found = get_user_model().objects.filter(username=username).values_list("pk", flat=True).first()
            self._user_ids[username] = found
        if self._user_ids[username] is None:
            raise EventError(f"user: no user named {username!r}")
        return self._user_ids[username]

    def _occurred_at(self, raw: object) -> datetime:
        parsed = parse_datetime(raw) if isinstance(raw, str) else None
        if parsed is None:
            raise EventError("occurred_at: missing or not an ISO 8601 time")
        if parsed.tzinfo is None:
            # A naive time is local; on a repeated hour (autumn DST) it is the first occurrence (fold=0).
            parsed = parsed.replace(tzinfo=self.tz)
        return parsed

    def read(self, line: str) -> Event | Skipped:
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise EventError(f"not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise EventError("a line must be a JSON object")
        try:
            event_id = uuid.UUID(str(data["event_id"]))
        except (KeyError, ValueError):
            raise EventError("event_id: missing or not a UUID") from None
        user_id = self._user_id(data.get("user"))
        occurred_at = self._occurred_at(data.get("occurred_at"))
        business_id = data.get("business_id", "")
        if business_id is None:
            business_id = ""
        if not isinstance(business_id, str | int) or isinstance(business_id, bool):
            raise EventError("business_id: must be a string")
        business_id = str(business_id)
        if len(business_id) > 255:
            raise EventError("business_id: longer than 255 characters")

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
        return Event(
            event_id=event_id,
            user_id=user_id,
            task_type=task_type,
            occurred_at=occurred_at,
            business_id=business_id,
            method=method.upper(),
            path=path[:2048],
            status=status,
        )
