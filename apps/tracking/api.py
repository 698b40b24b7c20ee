"""`POST /api/events`: other business systems report completed tasks, signed with their service key."""

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from ninja import Router, Schema, Status
from ninja.security import APIKeyHeader

from apps.core import metrics
from apps.core.log_context import log_context
from apps.tasks.selectors import recorded_event_ids
from apps.tracking.ingest import LineReader, read_batch
from apps.tracking.routing import route_table
from apps.tracking.services.pipeline import event_log_fields
from apps.tracking.services.service_keys import KeyRevoked, SignatureReplayed, events_accept, service_key_touch
from apps.tracking.signing import HEADER_KEY, Refused, SignedRequest, replayed_message, revoked_message, signed_request_verify
from config.api_errors import ErrorOut

logger = logging.getLogger(__name__)

router = Router(tags=["events"])

_DIGITS = re.compile(r"[0-9]{1,12}")


def _body_within_limit(request: HttpRequest) -> bytes:
    """The body, read only once its declared length is known to be within the limit (411, 413 otherwise)."""
    most = settings.JIFEN_API_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH") or ""
    if not declared:
        # A chunked body has no declared length: a WSGI server would hand the view nothing of it
        # (a signed request would then fail as "bad signature"), and the limit could not be kept.
        raise Refused(411, "length_required", _("Send the body with a Content-Length header (not chunked)."))
    too_large = Refused(
        413, "body_too_large", _("The body is larger than %(most)d bytes; send fewer events at once.") % {"most": most}
    )
    if not _DIGITS.fullmatch(declared) or int(declared) > most:
        raise too_large
    # A WSGI server gives the view at most CONTENT_LENGTH bytes; under ASGI the length is checked again.
    if len(body := request.body) > most:
        raise too_large
    return body


@contextmanager
def _refusals_counted() -> Iterator[None]:
    """Count a refused `POST /api/events` by its error code (per request: a refused body is often not read)."""
    try:
        yield
    except Refused as refused:
        metrics.EVENTS_REFUSED.labels(source=metrics.SOURCE_API, reason=refused.code).inc()
        raise
    except DatabaseError:
        # Answered 503 (config/api_errors): neither the broker nor the database could keep them.
        metrics.EVENTS_REFUSED.labels(source=metrics.SOURCE_API, reason="unavailable").inc()
        raise


class ServiceSignature(APIKeyHeader):
    """An HMAC-SHA256 signature of the request by a service key (see docs/api.md)."""

    param_name = HEADER_KEY
    openapi_description = (
        "HMAC-SHA256 request signature. Send X-Jifen-Key (the key id), X-Jifen-Timestamp (Unix seconds) and "
        'X-Jifen-Signature = hex HMAC-SHA256(secret, timestamp + "\\n" + METHOD + "\\n" + path + "\\n" + body).'
    )

    def __init__(self, *, counts_refused_events: bool = False) -> None:
        # On `POST /api/events` a refused signature is a refused batch of events; the holds API's is not.
        self.counts_refused_events = counts_refused_events
        super().__init__()

    def authenticate(self, request: HttpRequest, key: str | None) -> SignedRequest:
        if self.counts_refused_events:
            with _refusals_counted():
                return self._verified(request)
        return self._verified(request)

    def _verified(self, request: HttpRequest) -> SignedRequest:
        body = _body_within_limit(request)
        signed = signed_request_verify(
            headers=request.headers, method=request.method or "", path=request.path, body=body, now=time.time()
        )
        service_key_touch(key=signed.key)
        return signed


class EventIn(Schema):
    """One event (SPEC §2); either task_type, or method and path (routed like a request on the site)."""

    event_id: str
    user: str
    occurred_at: str
    task_type: str | None = None
    method: str | None = None
    path: str | None = None
    status: int | None = 200
    business_id: str | None = ""
    location: str | None = None
    country: str | None = None
    lang_type: str | None = None


class SkippedOut(Schema):
    index: int
    event_id: str | None = None
    reason: str


class AcceptedOut(Schema):
    accepted: int
    already_recorded: list[str]
    skipped: list[SkippedOut]


def _items(body: bytes) -> list:
    """The batch's items: the body is one event object, or {"events": [...]}; raises Refused (400, 413)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            # Well-formed, only nested beyond orjson's limit (1024): an event is flat, so it is no event.
            raise Refused(422, "too_deep", _("The body is nested too deeply to be events.")) from None
        if "surrogate" in str(exc):
            # Valid JSON syntax, but no Unicode text: orjson refuses it while parsing, before any field is known.
            message = _("The body holds a lone surrogate (a \\uD800-\\uDFFF escape without its pair): %(error)s")
            raise Refused(422, "lone_surrogate", message % {"error": exc}) from None
        raise Refused(400, "not_json", _("The body is not valid JSON: %(error)s") % {"error": exc}) from None
    if not isinstance(data, dict):
        raise Refused(400, "bad_batch", _('The body must be one event object, or {"events": [...]}.'))
    if "events" not in data:
        return [data]
    items = data["events"]
    if not isinstance(items, list) or not items:
        raise Refused(400, "bad_batch", _('"events" must be a non-empty list of event objects.'))
    most = settings.JIFEN_API_MAX_EVENTS
    if len(items) > most:
        raise Refused(
            413,
            "too_many_events",
            _("A batch holds at most %(most)d events; this one has %(count)d.") % {"most": most, "count": len(items)},
        )
    return items


# The body is read by hand (it is signed byte for byte), so its schema is spelled out for the docs.
_EVENT_SCHEMA = EventIn.model_json_schema()
_BODY_SCHEMA = {
    "oneOf": [
        _EVENT_SCHEMA,
        {
            "title": "BatchIn",
            "type": "object",
            "required": ["events"],
            "properties": {"events": {"type": "array", "minItems": 1, "items": _EVENT_SCHEMA}},
        },
    ]
}


@router.post(
    "",
    auth=ServiceSignature(counts_refused_events=True),
    response={202: AcceptedOut, frozenset({400, 401, 409, 411, 413, 415, 422, 503}): ErrorOut},
    summary="Report completed tasks (one event, or a batch)",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _BODY_SCHEMA}}}},
)
def post_events(request: HttpRequest):
    """Validate the whole batch, then hand it to the workers; 202 once the events are durable.

    Any bad event refuses the batch (422, each error naming the event's index and field) and
    nothing is handed off. An event whose task is not in use, or whose method and path route to no
    task, is no completion: it is listed under `skipped`. Events already recorded are listed under
    `already_recorded` and not processed again (idempotent on event_id).
    """
    with _refusals_counted():
        return _events_post(request)


def _events_post(request: HttpRequest) -> Status:
    signed: SignedRequest = request.auth
    if request.content_type != "application/json":
        raise Refused(415, "unsupported_media_type", _("Send the events as application/json."))
    items = _items(request.body)
    read = read_batch(LineReader(route_table()), items, allowed_task_types=signed.key.allowed_task_types)
    if read.errors:
        count = len(read.errors)
        raise Refused(
            422,
            "invalid_events",
            ngettext(
                "%(count)d event is not valid; nothing was accepted.",
                "%(count)d events are not valid; nothing was accepted.",
                count,
            )
            % {"count": count},
            errors=read.errors,
        )
    recorded = recorded_event_ids(event_ids=[event.event_id for event in read.events])
    fresh = [event for event in read.events if event.event_id not in recorded]
    try:
        # When neither the broker nor the database can keep them, a DatabaseError: 503 (config/api_errors).
        where = events_accept(signed=signed, events=fresh)
    except SignatureReplayed:
        raise Refused(409, "replayed", replayed_message()) from None
    except KeyRevoked:
        raise Refused(401, "revoked_key", revoked_message()) from None
    _log_accepted(read.events, recorded, where=where, key_id=signed.key.key_id)
    accepted = {
        "accepted": len({event.event_id for event in fresh}),
        "already_recorded": sorted(str(event_id) for event_id in recorded),
        "skipped": read.skipped,
    }
    return Status(202, accepted)


def _log_accepted(events: list, recorded: set, *, where: str, key_id: str) -> None:
    """One INFO line per event of the batch: where it went, or that it was recorded before."""
    if not logger.isEnabledFor(logging.INFO):
        return
    with log_context(source="api"):
        for event in events:
            what = "already recorded; not handed off" if event.event_id in recorded else f"handed to the {where}"
            logger.info(
                "event %s for user %s (%s) from key %s %s",
                event.event_id,
                event.user_id,
                event.task_type,
                key_id,
                what,
                extra=event_log_fields(event),
            )
