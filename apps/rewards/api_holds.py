"""`POST /api/holds`, `…/{id}/capture`, `…/{id}/release`: other systems hold users' points, signed with their service key.

Signed exactly as `POST /api/events` (apps.tracking.signing): the same headers, the same replay
protection, the same errors. The key must be allowed to hold points (`ServiceKey.may_hold`). The
calls and what they post are in apps.rewards.services.holds; docs/api.md has a worked example.
"""

import time
from datetime import datetime

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Router, Schema, Status

from apps.ledger.point_types import point_type_by_code
from apps.rewards.services.holds import HoldAnswer, HoldRefused, hold_capture, hold_place, hold_release
from apps.tracking.api import ServiceSignature
from apps.tracking.services.service_keys import KeyRevoked, SignatureReplayed, service_key_touch, signature_use
from apps.tracking.signing import Refused, SignedRequest, replayed_message, revoked_message, signed_request_verify
from config.api_errors import ErrorOut

router = Router(tags=["holds"])

REPLAYED_HEADER = "Idempotent-Replayed"
_FIELDS = {"user", "point_type", "amount", "key", "expires_in_s", "description"}
DESCRIPTION_MAX = 100


class EmptyBodySignature(ServiceSignature):
    """The same signature; capture and release carry no body, so a request without Content-Length signs an empty one."""

    def authenticate(self, request: HttpRequest, key: str | None) -> SignedRequest:
        if request.META.get("CONTENT_LENGTH"):
            return super().authenticate(request, key)
        signed = signed_request_verify(
            headers=request.headers, method=request.method or "", path=request.path, body=b"", now=time.time()
        )
        service_key_touch(key=signed.key)
        return signed


class HoldIn(Schema):
    """A hold to place (the body is read by hand: it is signed byte for byte)."""

    user: str
    amount: int
    key: str
    point_type: str = ""
    expires_in_s: int | None = None
    description: str = ""


class HoldOut(Schema):
    id: int
    status: str  # held, captured, released, expired
    user: str
    point_type: str
    amount: int
    key: str
    balance: int  # the user's balance of the type right after the hold's last entry (its spend, or its refund)
    expires_at: datetime
    created_at: datetime
    decided_at: datetime | None


def _hold_out(answer: HoldAnswer) -> dict:
    hold = answer.hold
    return {
        "id": hold.pk,
        "status": hold.status,
        "user": hold.user.get_username(),
        "point_type": hold.point_type.code,
        "amount": hold.amount,
        "key": hold.client_key,
        "balance": answer.balance,
        "expires_at": hold.expires_at,
        "created_at": hold.created_at,
        "decided_at": hold.decided_at,
    }


def _invalid(message: str) -> Refused:
    return Refused(422, "invalid_hold", message)


def _text(data: dict, name: str, *, required: bool, longest: int) -> str:
    value = data.get(name, "")
    if value is None and not required:
        value = ""
    if not isinstance(value, str):
        raise _invalid(_("%(field)s must be text.") % {"field": name})
    if required and not value:
        raise _invalid(_("%(field)s is required.") % {"field": name})
    if len(value) > longest:
        raise _invalid(_("%(field)s is longer than %(most)d characters.") % {"field": name, "most": longest})
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise _invalid(_("%(field)s holds a control character; use printable text.") % {"field": name})
    return value


def _whole(data: dict, name: str, default: int | None = None) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(_("%(field)s must be a whole number.") % {"field": name})
    return value


def _placement(body: bytes) -> dict:
    """The body's fields, checked; raises Refused (400 or 422) saying what is wrong."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "surrogate" in str(exc):
            raise _invalid(_("The body holds a lone surrogate (a \\uD800-\\uDFFF escape without its pair).")) from None
        raise Refused(400, "not_json", _("The body is not valid JSON: %(error)s") % {"error": exc}) from None
    if not isinstance(data, dict):
        raise _invalid(_("The body must be one JSON object: user, amount, key, and optionally point_type, expires_in_s."))
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise _invalid(_("Unknown fields: %(fields)s.") % {"fields": ", ".join(unknown)})
    return {
        "user": _text(data, "user", required=True, longest=get_user_model()._meta.get_field("username").max_length),
        "point_type": _text(data, "point_type", required=False, longest=32),
        "key": _text(data, "key", required=True, longest=128),
        "description": _text(data, "description", required=False, longest=DESCRIPTION_MAX),
        "amount": _whole(data, "amount"),
        "expires_in_s": _whole(data, "expires_in_s", settings.JIFEN_HOLD_DEFAULT_S),
    }


def _allowed(signed: SignedRequest) -> None:
    if not signed.key.may_hold:
        raise Refused(
            403,
            "holds_not_allowed",
            _("This service key may not hold points; an operator creates a key that may (Service keys › Add)."),
        )


def _signed_call(signed: SignedRequest, call):
    """Run `call` and use the request's signature in one transaction: a refused call leaves the signature unused."""
    try:
        with transaction.atomic():
            signature_use(signed=signed)
            return call()
    except SignatureReplayed:
        raise Refused(409, "replayed", replayed_message()) from None
    except KeyRevoked:
        raise Refused(401, "revoked_key", revoked_message()) from None
    except HoldRefused as refused:
        raise Refused(refused.status, refused.code, refused.message) from None


_ERRORS = frozenset({400, 401, 403, 404, 409, 411, 413, 415, 422, 503})


@router.post(
    "",
    auth=ServiceSignature(),
    response={201: HoldOut, _ERRORS: ErrorOut},
    summary="Hold a user's points (a spend at once), to capture or release later",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": HoldIn.model_json_schema()}}}},
)
def hold_create(request: HttpRequest, response: HttpResponse):
    """Hold `amount` points of `user` (`point_type`'s code; empty: the default type) for `expires_in_s` seconds.

    201 with the hold. The same `key` from the same service key again answers the same hold and
    posts nothing (header Idempotent-Replayed: true). 409 `insufficient_points` when the balance is
    short: a hold never takes it below zero.
    """
    signed: SignedRequest = request.auth
    _allowed(signed)
    if request.content_type != "application/json":
        raise Refused(415, "unsupported_media_type", _("Send the hold as application/json."))
    fields = _placement(request.body)
    user = get_user_model().objects.filter(username=fields["user"]).first()
    if user is None:
        raise Refused(422, "unknown_user", _("No user is named %(user)r.") % {"user": fields["user"]})
    point_type = point_type_by_code(fields["point_type"])
    if point_type is None:
        raise Refused(422, "unknown_point_type", _("No point type has the code %(code)r.") % {"code": fields["point_type"]})
    answer = _signed_call(
        signed,
        lambda: hold_place(
            service_key=signed.key,
            user=user,
            point_type=point_type,
            amount=fields["amount"],
            client_key=fields["key"],
            expires_in_s=fields["expires_in_s"],
            description=fields["description"],
        ),
    )
    return _replayed(answer, 201, response)


def _replayed(answer: HoldAnswer, status: int, response: HttpResponse):
    """The answer; a call answered before (nothing posted now) carries the header Idempotent-Replayed: true."""
    if not answer.changed:
        response[REPLAYED_HEADER] = "true"
    return Status(status, _hold_out(answer))


@router.post(
    "/{hold_id}/capture",
    auth=EmptyBodySignature(),
    response={200: HoldOut, _ERRORS: ErrorOut},
    summary="Capture a hold: the held points are spent for good",
)
def hold_capture_view(request: HttpRequest, hold_id: int, response: HttpResponse):
    """200 with the hold, captured. Capturing it again answers the same; a released or expired hold is 409."""
    signed: SignedRequest = request.auth
    _allowed(signed)
    answer = _signed_call(signed, lambda: hold_capture(service_key=signed.key, hold_id=hold_id))
    return _replayed(answer, 200, response)


@router.post(
    "/{hold_id}/release",
    auth=EmptyBodySignature(),
    response={200: HoldOut, _ERRORS: ErrorOut},
    summary="Release a hold: the held points go back to the user (a refund entry)",
)
def hold_release_view(request: HttpRequest, hold_id: int, response: HttpResponse):
    """200 with the hold, released. Releasing it again answers the same; a captured hold is 409."""
    signed: SignedRequest = request.auth
    _allowed(signed)
    answer = _signed_call(signed, lambda: hold_release(service_key=signed.key, hold_id=hold_id))
    return _replayed(answer, 200, response)
