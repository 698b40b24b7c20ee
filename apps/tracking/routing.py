"""Which TaskConfig a request completes (SPEC §2).

The in-use configs are compiled once per process into a route table. Each process checks at
most every JIFEN_ROUTES_REFRESH_S seconds whether any config changed (one small query) and
rebuilds the table if so; a request itself never queries the database to be routed.
"""

import json
import re
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Max

from apps.tasks.models import TaskConfig


@dataclass(frozen=True)
class Route:
    config_id: int
    task_type: str
    method: str
    regex: re.Pattern
    id_group_name: str
    priority: int
    status_min: int
    status_max: int
    json_field: str
    json_value: str

    @classmethod
    def from_config(cls, config: TaskConfig) -> "Route":
        return cls(
            config_id=config.pk,
            task_type=config.task_type,
            method=config.method.upper(),
            regex=re.compile(config.interface_name),
            id_group_name=config.id_group_name,
            priority=config.priority,
            status_min=config.success_status_min,
            status_max=config.success_status_max,
            json_field=config.success_json_field,
            json_value=config.success_json_value,
        )

    def status_ok(self, status: int) -> bool:
        return self.status_min <= status <= self.status_max

    def succeeded(self, status: int, json_body: object = None) -> bool:
        """Whether a response with `status` (and, if configured, `json_body`) completes the task."""
        if not self.status_ok(status):
            return False
        if not self.json_field:
            return True
        if not isinstance(json_body, dict) or self.json_field not in json_body:
            return False
        value = json_body[self.json_field]
        return (value if isinstance(value, str) else json.dumps(value)) == self.json_value


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    business_id: str


class RouteTable:
    def __init__(self, routes: list[Route]):
        by_method: dict[str, list[Route]] = {}
        for route in sorted(routes, key=lambda r: (-r.priority, r.config_id)):
            by_method.setdefault(route.method, []).append(route)
        self._by_method = by_method

    def __len__(self) -> int:
        return sum(len(routes) for routes in self._by_method.values())

    def match(self, method: str, path: str) -> RouteMatch | None:
        """The highest-priority (then lowest-id) route whose regex fully matches `path`."""
        for route in self._by_method.get(method.upper(), ()):
            found = route.regex.fullmatch(path)
            if found:
                business_id = (found.group(route.id_group_name) or "") if route.id_group_name else ""
                return RouteMatch(route, business_id)
        return None


def build_route_table() -> RouteTable:
    configs = TaskConfig.objects.filter(status=TaskConfig.Status.IN_USE).order_by("-priority", "id")
    return RouteTable([Route.from_config(config) for config in configs])


class _CachedTable:
    """The process's route table, rebuilt when the configs' change stamp moves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table: RouteTable | None = None
        self._stamp: tuple | None = None
        self._checked_at = 0.0

    def get(self) -> RouteTable:
        now = time.monotonic()
        if self._table is not None and now - self._checked_at < settings.JIFEN_ROUTES_REFRESH_S:
            return self._table
        with self._lock:
            if self._table is not None and now - self._checked_at < settings.JIFEN_ROUTES_REFRESH_S:
                return self._table
            # Soft deletes and status changes both move updated_at; the count catches hard deletes.
            stamp = tuple(TaskConfig.all_objects.aggregate(changed=Max("updated_at"), rows=Count("id")).values())
            if self._table is None or stamp != self._stamp:
                self._table = build_route_table()
                self._stamp = stamp
            self._checked_at = now
            return self._table

    def clear(self) -> None:
        with self._lock:
            self._table = None
            self._stamp = None


_cached = _CachedTable()


def route_table() -> RouteTable:
    return _cached.get()


def route_table_clear() -> None:
    """Forget the cached table (tests, and a process that has just changed configs)."""
    _cached.clear()
