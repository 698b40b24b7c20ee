"""Which TaskConfig a request completes (SPEC §2).

The in-use configs are compiled once per process into a route table. Each process checks at
most every JIFEN_ROUTES_REFRESH_S seconds whether any config changed (one small query) and
rebuilds the table if so; a request itself never queries the database to be routed.
"""

import json
import re
from dataclasses import dataclass, field

from django.conf import settings

from apps.core.stamped_cache import StampedCache
from apps.tasks.models import TaskConfig

_JSON_INT = re.compile(r"-?(0|[1-9][0-9]*)")


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
    # json_value as an int when it is one's JSON spelling ("0"), so the common integer success
    # code is checked without json.dumps on every request.
    json_int: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        spelled_int = _JSON_INT.fullmatch(self.json_value) is not None
        object.__setattr__(self, "json_int", int(self.json_value) if spelled_int else None)

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
        if isinstance(value, str):
            return value == self.json_value
        if type(value) is int:  # json.dumps(value) is str(value): equal iff the numbers are
            return value == self.json_int
        return json.dumps(value) == self.json_value


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    business_id: str


# A pattern's literal beginning: optional ^, then path characters that are never regex syntax.
_LITERAL_PREFIX = re.compile(r"\^?(/[A-Za-z0-9_~/-]*)")


def first_segment(pattern: str) -> str | None:
    """The first path segment every match of `pattern` must start with, or None if it can vary.

    Conservative: any alternation or inline flag makes the pattern a wildcard, and so does a
    first segment that the literal beginning does not finish ("/po" of "^/po(st|ll)/").
    """
    if "|" in pattern or pattern.startswith("(?"):
        return None
    found = _LITERAL_PREFIX.match(pattern)
    if found is None:
        return None
    literal = found.group(1)
    rest = pattern[found.end() :]
    segment, slash, _ = literal[1:].partition("/")
    if slash or rest in ("", "$", "\\Z"):
        return segment
    return None


def _segment_of(path: str) -> str:
    return path[1:].partition("/")[0] if path.startswith("/") else ""


class RouteTable:
    """Routes by method, then by the path's first segment.

    Most configs start with a literal segment (`^/posts/...`), so a request is only tried against
    the few routes of its own segment plus the wildcard routes; an untracked request usually costs
    two dict lookups and no regex at all, whatever the number of configs (P2).
    """

    def __init__(self, routes: list[Route]):
        def order(route: Route) -> tuple[int, int]:
            return (-route.priority, route.config_id)

        by_method: dict[str, tuple[dict[str, tuple[Route, ...]], tuple[Route, ...]]] = {}
        for method in {route.method for route in routes}:
            mine = [route for route in routes if route.method == method]
            wildcard = sorted((r for r in mine if first_segment(r.regex.pattern) is None), key=order)
            segments: dict[str, list[Route]] = {}
            for route in mine:
                segment = first_segment(route.regex.pattern)
                if segment is not None:
                    segments.setdefault(segment, []).append(route)
            by_segment = {segment: tuple(sorted(listed + wildcard, key=order)) for segment, listed in segments.items()}
            by_method[method] = (by_segment, tuple(wildcard))
        self._by_method = by_method
        self._count = len(routes)

    def __len__(self) -> int:
        return self._count

    def match(self, method: str, path: str) -> RouteMatch | None:
        """The highest-priority (then lowest-id) route whose regex fully matches `path`."""
        table = self._by_method.get(method.upper())
        if table is None:
            return None
        by_segment, wildcard = table
        for route in by_segment.get(_segment_of(path), wildcard):
            found = route.regex.fullmatch(path)
            if found:
                business_id = (found.group(route.id_group_name) or "") if route.id_group_name else ""
                return RouteMatch(route, business_id)
        return None


def build_route_table() -> RouteTable:
    configs = TaskConfig.objects.filter(status=TaskConfig.Status.IN_USE).order_by("-priority", "id")
    return RouteTable([Route.from_config(config) for config in configs])


_cached = StampedCache(TaskConfig, build_route_table, lambda: settings.JIFEN_ROUTES_REFRESH_S)


def route_table() -> RouteTable:
    return _cached.get()


def route_table_clear() -> None:
    """Forget the cached table (tests, and a process that has just changed configs)."""
    _cached.clear()
