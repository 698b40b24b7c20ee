"""Turning a finished request into an event, or into nothing (SPEC §2)."""

import logging
import uuid

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from apps.tracking.events import FIELD_MAX_LENGTHS, Event, EventError, text_check
from apps.tracking.routing import route_table

logger = logging.getLogger(__name__)


def _meta(name: str, value: str) -> str:
    """A request meta value (client address, country, language) as stored: "" (unknown) when it is
    too long or holds control characters, rather than cut or kept broken."""
    try:
        return text_check(name, value, longest=FIELD_MAX_LENGTHS[name])
    except EventError:
        return ""


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
            return _meta("location", forwarded.split(",")[0].strip())
    return _meta("location", request.META.get("REMOTE_ADDR", ""))


def first_language(request: HttpRequest) -> str:
    header = request.META.get("HTTP_ACCEPT_LANGUAGE", "")
    return _meta("lang_type", header.split(",")[0].split(";")[0].strip())


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
    try:
        # A business id is never cut (two objects could then collide), nor stored with control
        # characters: a request whose path holds such a one completes nothing (SPEC §9, G8).
        business_id = text_check("business_id", found.business_id, longest=FIELD_MAX_LENGTHS["business_id"])
        path = text_check("path", request.path, longest=FIELD_MAX_LENGTHS["path"])
    except EventError as exc:
        logger.warning("%s %s by user %s completes no task: %s", request.method, ascii(request.path[:200]), user.pk, exc)
        return None
    return Event(
        event_id=uuid.uuid4(),
        user_id=user.pk,
        task_type=route.task_type,
        occurred_at=timezone.now(),
        business_id=business_id,
        method=(request.method or "").upper(),
        path=path,
        status=response.status_code,
        location=client_address(request),
        country=_meta("country", request.META.get(settings.JIFEN_COUNTRY_HEADER, "")),
        lang_type=first_language(request),
    )
