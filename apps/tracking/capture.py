"""Turning a finished request into an event, or into nothing (SPEC §2)."""

import uuid

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from apps.tracking.events import Event
from apps.tracking.routing import route_table


def _json_body(response: HttpResponse) -> object:
    """The response's JSON, or None when it is streaming, not JSON, or not parseable."""
    if getattr(response, "streaming", False):
        return None
    if "json" not in response.get("Content-Type", ""):
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def client_address(request: HttpRequest) -> str:
    if settings.JIFEN_TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()[:64]
    return request.META.get("REMOTE_ADDR", "")[:64]


def first_language(request: HttpRequest) -> str:
    header = request.META.get("HTTP_ACCEPT_LANGUAGE", "")
    return header.split(",")[0].split(";")[0].strip()[:35]


def event_from_request(request: HttpRequest, response: HttpResponse) -> Event | None:
    """The event this request completes, or None (untracked, anonymous, or unsuccessful)."""
    # Route first: for the many untracked requests this is a dict lookup, and it spares loading
    # the session-backed user that the view may never have touched.
    found = route_table().match(request.method or "", request.path)
    if found is None:
        return None
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    route = found.route
    body = _json_body(response) if route.json_field else None
    if not route.succeeded(response.status_code, body):
        return None
    return Event(
        event_id=uuid.uuid4(),
        user_id=user.pk,
        task_type=route.task_type,
        occurred_at=timezone.now(),
        business_id=found.business_id[:255],
        method=(request.method or "").upper(),
        path=request.path[:2048],
        status=response.status_code,
        location=client_address(request),
        country=request.META.get(settings.JIFEN_COUNTRY_HEADER, "")[:8],
        lang_type=first_language(request),
    )
