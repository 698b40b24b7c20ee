"""Reads about task configs for the operator's tools."""

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from apps.tasks.models import TaskConfig
from apps.tracking.routing import Route, RouteTable, build_route_table


@dataclass(frozen=True)
class ConfigMatch:
    config: TaskConfig
    business_id: str


@dataclass(frozen=True)
class RequestRouting:
    """How the tracking middleware would route one request, and what else nearly matched."""

    method: str
    path: str
    match: ConfigMatch | None  # the in-use config the request completes
    outranked: list[ConfigMatch] = field(default_factory=list)  # in use, match too, lose on priority/id
    not_in_use: list[ConfigMatch] = field(default_factory=list)  # would match if they were in use
    other_methods: list[ConfigMatch] = field(default_factory=list)  # in use, match the path with another method


def request_path(text: str) -> str:
    """The path the middleware would see for `text`: a path, or a pasted URL without host and query."""
    parts = urlsplit(text.strip())
    return parts.path or "/"


def request_routing_explain(*, method: str, path: str) -> RequestRouting:
    """Route `method path` with the middleware's own code, over a route table built fresh.

    The table is built from the database now rather than taken from the process cache, so a
    config put in use a moment ago shows. Every live config is also tried on its own, to say
    why a request matched nothing (a draft, a deprecated config, another method).
    """
    method = method.upper()
    found = build_route_table().match(method, path)
    configs = {config.pk: config for config in TaskConfig.objects.order_by("-priority", "id")}
    routing = RequestRouting(
        method=method,
        path=path,
        match=ConfigMatch(configs[found.route.config_id], found.business_id) if found else None,
    )
    for config in configs.values():
        if routing.match and config.pk == routing.match.config.pk:
            continue
        try:
            # A table of one: the same matching and business-id code as the middleware's.
            alone = RouteTable([Route.from_config(config)])
        except re.error:
            continue
        same_method = alone.match(method, path)
        if same_method is not None:
            hit = ConfigMatch(config, same_method.business_id)
            if config.status == TaskConfig.Status.IN_USE:
                routing.outranked.append(hit)
            else:
                routing.not_in_use.append(hit)
        elif config.status == TaskConfig.Status.IN_USE:
            other = alone.match(config.method, path)
            if other is not None:
                routing.other_methods.append(ConfigMatch(config, other.business_id))
    return routing
