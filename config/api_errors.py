"""How every endpoint of the JSON API answers an error: one JSON shape, `{"error", "message", ...}`."""

import logging

from django.db import DatabaseError, DataError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError

from apps.tracking.capture import client_address
from apps.tracking.signing import HEADER_KEY, Refused

logger = logging.getLogger("apps.tracking.api")

# Seconds a client is asked to wait when the events cannot be kept right now.
RETRY_AFTER_S = 5


class EventErrorOut(Schema):
    index: int
    event_id: str | None = None
    field: str | None = None
    message: str


class ErrorOut(Schema):
    error: str
    message: str
    errors: list[EventErrorOut] = []


def _refused(api: NinjaAPI, request: HttpRequest, refused: Refused) -> HttpResponse:
    # Which key, why and from where; never the secret, the signature or the body.
    logger.warning(
        "api: %s %s refused with %d %s (key %r, client %s)",
        request.method,
        request.path,
        refused.status,
        refused.code,
        request.headers.get(HEADER_KEY, "")[:40],
        client_address(request),
    )
    body = {"error": refused.code, "message": refused.message}
    if refused.errors:
        body["errors"] = refused.errors
    response = api.create_response(request, body, status=refused.status)
    if refused.retry_after_s:
        response["Retry-After"] = str(refused.retry_after_s)
    return response


def _not_signed_in(api: NinjaAPI, request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(request, {"error": "not_signed_in", "message": _("Sign in first.")}, status=401)


def _http_error(api: NinjaAPI, request: HttpRequest, exc: HttpError) -> HttpResponse:
    # Raised by ninja itself: session auth's CSRF check on a POST, and a JSON body it cannot parse.
    if exc.status_code == 403 and "CSRF" in str(exc):
        body = {
            "error": "csrf_failed",
            "message": _(
                "The site's CSRF token is missing or wrong: send the csrftoken cookie's value in the X-CSRFToken header."
            ),
        }
    elif exc.status_code == 400:
        body = {"error": "not_json", "message": _("The body is not JSON.")}
    else:
        body = {"error": f"http_{exc.status_code}", "message": str(exc)}
    return api.create_response(request, body, status=exc.status_code)


def _bad_parameters(api: NinjaAPI, request: HttpRequest, exc: ValidationError) -> HttpResponse:
    body = {"error": "bad_parameters", "message": _("Some parameters are not valid."), "detail": exc.errors}
    return api.create_response(request, body, status=422)


def _database_down(api: NinjaAPI, request: HttpRequest, exc: DatabaseError) -> HttpResponse:
    logger.error("api: %s %s failed on the database: %s", request.method, request.path, exc)
    message = _("The service cannot take requests right now; try again shortly.")
    refused = Refused(503, "unavailable", message, retry_after_s=RETRY_AFTER_S)
    return _refused(api, request, refused)


def _bad_value(api: NinjaAPI, request: HttpRequest, exc: DataError) -> HttpResponse:
    # A value the database cannot hold (a number out of range): the request's fault, not an outage.
    logger.warning("api: %s %s: a value the database refused: %s", request.method, request.path, exc)
    body = {"error": "bad_parameters", "message": _("Some parameters are not valid.")}
    return api.create_response(request, body, status=422)


def install_error_handlers(api: NinjaAPI) -> None:
    api.add_exception_handler(Refused, lambda request, exc: _refused(api, request, exc))
    api.add_exception_handler(AuthenticationError, lambda request, exc: _not_signed_in(api, request, exc))
    api.add_exception_handler(HttpError, lambda request, exc: _http_error(api, request, exc))
    api.add_exception_handler(ValidationError, lambda request, exc: _bad_parameters(api, request, exc))
    api.add_exception_handler(DatabaseError, lambda request, exc: _database_down(api, request, exc))
    api.add_exception_handler(DataError, lambda request, exc: _bad_value(api, request, exc))
