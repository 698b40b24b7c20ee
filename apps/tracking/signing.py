"""Signed requests from other systems to `POST /api/events`: the scheme, and checking a request against it.

A request carries three headers:

    X-Jifen-Key:        the key id (public), e.g. jk_0123456789abcdef
    X-Jifen-Timestamp:  the time of signing, in whole Unix seconds
    X-Jifen-Signature:  hex HMAC-SHA256(secret, timestamp + "\\n" + METHOD + "\\n" + path + "\\n" + body)

where path is the request's path without host or query (`/api/events`) and body the exact bytes
sent. The server refuses a timestamp more than JIFEN_API_SIGNATURE_MAX_AGE_S seconds away from its
clock in either direction, and a signature it has accepted before (SeenSignature).
"""

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.utils.translation import gettext as _

from apps.tracking.models import SeenSignature, ServiceKey

HEADER_KEY = "X-Jifen-Key"
HEADER_TIMESTAMP = "X-Jifen-Timestamp"
HEADER_SIGNATURE = "X-Jifen-Signature"

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class Refused(Exception):
    """The request is refused: `status`, a stable `code` for programs, and a `message` for people."""

    def __init__(self, status: int, code: str, message: str, *, errors: list[dict] | None = None, retry_after_s: int = 0):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or []
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class SignedRequest:
    key: ServiceKey
    signature: str  # lower-case hex, as computed here
    signed_at: datetime
    expires_at: datetime = field(init=False)

    def __post_init__(self) -> None:
        # Past this instant the timestamp is stale, so a replay is refused without remembering it.
        expires = datetime.fromtimestamp(self.signed_at.timestamp() + settings.JIFEN_API_SIGNATURE_MAX_AGE_S, UTC)
        object.__setattr__(self, "expires_at", expires)


def signature_for(*, secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of a request, as the client computes it."""
    message = b"\n".join([timestamp.encode("ascii"), method.upper().encode("ascii"), path.encode("utf-8"), body])
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_request_verify(*, headers, method: str, path: str, body: bytes, now: float) -> SignedRequest:
    """The key that signed this request; raises Refused (401, or 409 for a replay) saying why not.

    Checked in this order, so that a forger learns nothing past "bad signature": the headers are
    present and well-formed, the key exists and is not revoked, the signature matches (a constant-
    time comparison), the timestamp is fresh, and the signature was not accepted before.
    """
    key_id = headers.get(HEADER_KEY, "").strip()
    timestamp = headers.get(HEADER_TIMESTAMP, "").strip()
    given = headers.get(HEADER_SIGNATURE, "").strip()
    if not key_id or not timestamp or not given:
        raise Refused(
            401,
            "missing_signature",
            _("Sign the request: the headers %(headers)s are required.")
            % {"headers": ", ".join((HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE))},
        )
    if not _TIMESTAMP.fullmatch(timestamp):
        raise Refused(401, "bad_timestamp", _("%(header)s must be whole Unix seconds.") % {"header": HEADER_TIMESTAMP})
    key = ServiceKey.objects.filter(key_id=key_id).first()
    if key is None:
        raise Refused(401, "unknown_key", _("No service key has this id."))
    if not key.is_active:
        raise Refused(401, "revoked_key", revoked_message())
    expected = signature_for(secret=key.secret, timestamp=timestamp, method=method, path=path, body=body)
    if not _HEX_SHA256.fullmatch(given) or not hmac.compare_digest(expected, given.lower()):
        raise Refused(401, "bad_signature", _("The signature does not match the request."))
    skew_s = now - int(timestamp)
    if abs(skew_s) > settings.JIFEN_API_SIGNATURE_MAX_AGE_S:
        raise Refused(
            401,
            "stale_timestamp",
            _("The timestamp is %(skew)d seconds away from the server's clock; at most %(most)d are allowed. Sign again.")
            % {"skew": round(abs(skew_s)), "most": settings.JIFEN_API_SIGNATURE_MAX_AGE_S},
        )
    # An early, clear answer; the unique constraint on SeenSignature decides a race (events_accept).
    if SeenSignature.objects.filter(signature=expected).exists():
        raise Refused(409, "replayed", replayed_message())
    return SignedRequest(key=key, signature=expected, signed_at=datetime.fromtimestamp(int(timestamp), UTC))


def revoked_message() -> str:
    return _("This service key was revoked.")


def replayed_message() -> str:
    return _("This signed request was received before; a new request needs a new timestamp and signature.")
