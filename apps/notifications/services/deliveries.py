"""Sending the webhook outbox (SPEC §12, G15): signed per Standard Webhooks, retried with backoff for a day.

`announce` writes a `WebhookDelivery` per endpoint and event in the transaction of the event;
beat runs `webhook_deliveries_send` every few seconds. It claims the due deliveries in a short
transaction (`FOR UPDATE SKIP LOCKED`, so several senders never take the same row) and moves
their next attempt ahead by a lease: a sender killed mid-way leaves its rows to come back when the
lease ends, so every delivery is tried again (at least once; a receiver drops repeats by
`webhook-id`). The POSTs happen outside any transaction, a few at once in threads that touch no
database; their results are written in one transaction afterwards.

A delivery keeps its `message_id` (`webhook-id`) and body on every attempt; each attempt is signed
afresh with the endpoint's current secret and the time it is sent (`webhook-timestamp`).
"""

import hmac
import ipaddress
import logging
import math
import random
import socket
import time
import urllib.error
import urllib.request
import uuid
from base64 import b64decode, b64encode
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import sha256
from http.client import HTTPException
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from apps.core import metrics
from apps.notifications.events import ENDPOINT_TEST
from apps.notifications.models import SECRET_PREFIX, WebhookAttempt, WebhookDelivery, WebhookEndpoint, new_secret
from apps.notifications.services.announce import message_id, subscriptions, webhook_body

logger = logging.getLogger(__name__)

USER_AGENT = "Jifen-Webhooks/1.0"
# Deliveries one claim takes; a sender run claims again while a claim comes back full.
CLAIM_BATCH = 50
# How much of a receiver's answer is kept with the attempt (the admin shows it).
RESPONSE_KEEP_CHARS = 500
# A claim's lease beyond the time its POSTs can take: time to write the results.
_LEASE_MARGIN_S = 60.0
_DELIVERED, _PENDING, _FAILED = WebhookDelivery.Status.DELIVERED, WebhookDelivery.Status.PENDING, WebhookDelivery.Status.FAILED


class EndpointNotActive(Exception):
    """A test event was asked for an endpoint that is not active (it would never be sent)."""


# --- Signing (https://www.standardwebhooks.com/) -------------------------------------------------


def webhook_sign(*, secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` value: "v1," and the base64 HMAC-SHA256 of "id.timestamp.body".

    The key is the secret's base64 part after `whsec_`, decoded.
    """
    key = b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), sha256).digest()
    return "v1," + b64encode(digest).decode()


def webhook_headers(*, secret: str, message_id: str, body: str, timestamp: int) -> dict[str, str]:
    """Every header a delivery is POSTed with."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": webhook_sign(secret=secret, message_id=message_id, timestamp=timestamp, body=body),
    }


# --- One POST ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    endpoint_id: int
    url: str
    secret: str
    message_id: str
    body: str


@dataclass(frozen=True)
class _Result:
    job: _Job
    at: datetime
    status_code: int | None
    response: str
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer (recorded, and a failure), never followed: it could lead anywhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


# No proxy from the environment either: the address checked below is the one connected to.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects)


class _Refused(Exception):
    pass


def url_problem(url: str) -> str | None:
    """Why `url` cannot be an endpoint's address as written (not http/https, no host), or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "only http:// and https:// URLs can receive webhooks"
    if not parts.hostname:
        return "the URL names no host"
    return None


def _check_address(url: str) -> None:
    """Refuse a URL that is not http(s), or whose host is internal while JIFEN_WEBHOOK_ALLOW_PRIVATE is off.

    Checked when sending (an address can change): every address the name resolves to must be
    public. A name that resolves differently a moment later (DNS rebinding) is not caught.
    """
    problem = url_problem(url)
    if problem:
        raise _Refused(problem)
    if settings.JIFEN_WEBHOOK_ALLOW_PRIVATE:
        return
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except OSError as exc:
        raise _Refused(f"cannot resolve {parts.hostname}: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global or address.is_multicast:
            raise _Refused(f"{parts.hostname} is an internal address ({address}); JIFEN_WEBHOOK_ALLOW_PRIVATE is off")


def _post(job: _Job) -> _Result:
    """POST one delivery and say what came back. Runs in a thread: no database here."""
    at = timezone.now()
    started = time.monotonic()
    status_code, response, error = None, "", ""
    try:
        _check_address(job.url)
        headers = webhook_headers(secret=job.secret, message_id=job.message_id, body=job.body, timestamp=int(at.timestamp()))
        # S310: _check_address has refused every scheme but http and https.
        request = urllib.request.Request(job.url, data=job.body.encode(), headers=headers, method="POST")  # noqa: S310
        try:
            with _opener.open(request, timeout=settings.JIFEN_WEBHOOK_TIMEOUT_S) as answer:
                status_code, response = answer.status, _snippet(answer)
        except urllib.error.HTTPError as answer:  # an answer all the same (4xx, 5xx, a redirect)
            with answer:
                status_code, response = answer.code, _snippet(answer)
            if not 200 <= answer.code < 300:
                error = f"HTTP {answer.code} {answer.reason}"
    except _Refused as exc:
        error = f"refused: {exc}"
    except TimeoutError:
        error = f"no answer within {settings.JIFEN_WEBHOOK_TIMEOUT_S:g} s"
    except urllib.error.URLError as exc:
        reason = exc.reason
        error = f"no answer within {settings.JIFEN_WEBHOOK_TIMEOUT_S:g} s" if isinstance(reason, TimeoutError) else str(reason)
    except (OSError, HTTPException, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    if status_code is not None and not 200 <= status_code < 300 and not error:
        error = f"HTTP {status_code}"
    duration_ms = round((time.monotonic() - started) * 1000)
    return _Result(job, at, status_code, response, error[:255], duration_ms)


def _snippet(answer) -> str:
    try:
        raw = answer.read(RESPONSE_KEEP_CHARS * 4)
    except (OSError, HTTPException):
        return ""
    return raw.decode("utf-8", errors="replace")[:RESPONSE_KEEP_CHARS]


def _post_all(jobs: Sequence[_Job]) -> list[_Result]:
    if len(jobs) <= 1:
        return [_post(job) for job in jobs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(settings.JIFEN_WEBHOOK_CONCURRENCY, len(jobs))) as pool:
        return list(pool.map(_post, jobs))


# --- Claiming and recording ----------------------------------------------------------------------


def _lease_s(count: int) -> float:
    """How long a claim of `count` deliveries may take: every round of POSTs timing out, and a margin."""
    rounds = math.ceil(count / settings.JIFEN_WEBHOOK_CONCURRENCY)
    return rounds * settings.JIFEN_WEBHOOK_TIMEOUT_S + _LEASE_MARGIN_S


def _job(delivery: WebhookDelivery) -> _Job:
    endpoint = delivery.endpoint
    return _Job(delivery.pk, endpoint.pk, endpoint.url, endpoint.secret, delivery.message_id, delivery.payload)


def _claim(*, now: datetime, limit: int) -> list[_Job]:
    """Take up to `limit` due deliveries of active endpoints; their next attempt moves ahead by a lease."""
    with transaction.atomic():
        rows = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(status=_PENDING, next_attempt_at__lte=now, endpoint__active=True)
            .order_by("next_attempt_at", "id")[:limit]
        )
        if rows:
            lease_until = now + timedelta(seconds=_lease_s(len(rows)))
            WebhookDelivery.objects.filter(pk__in=[row.pk for row in rows]).update(next_attempt_at=lease_until)
    return [_job(row) for row in rows]


def _backoff_s(attempts: int) -> float:
    """The wait after the `attempts`-th failed attempt, with up to 10 % added so retries of one outage spread out."""
    schedule = settings.JIFEN_WEBHOOK_BACKOFF_S
    step = schedule[min(attempts, len(schedule)) - 1]
    return step * (1 + random.random() / 10)  # noqa: S311 - spreading retries, not a secret


@dataclass
class SendResult:
    """What one sender run did: deliveries that arrived, that will be tried again, that were given up."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    def add(self, other: "SendResult") -> None:
        self.delivered += other.delivered
        self.retrying += other.retrying
        self.failed += other.failed


def _record(results: Sequence[_Result], *, manual: bool) -> SendResult:
    """Write the attempts, move each delivery on, and the endpoints' health, in one transaction."""
    outcome = SendResult()
    if not results:
        return outcome
    failed_ids = [r.job.delivery_id for r in results if not r.ok]
    with transaction.atomic():
        # The give-up clock runs from a delivery's first scheduled attempt (an operator's resend does not restart it).
        first_at = dict(
            WebhookAttempt.objects.filter(delivery_id__in=failed_ids, manual=False)
            .values("delivery_id")
            .annotate(first=Min("at"))
            .values_list("delivery_id", "first")
        )
        WebhookAttempt.objects.bulk_create(
            WebhookAttempt(
                delivery_id=r.job.delivery_id,
                at=r.at,
                status_code=r.status_code,
                response=r.response,
                error=r.error,
                duration_ms=r.duration_ms,
                manual=manual,
            )
            for r in results
        )
        # Locks in id order, then endpoints in id order: two recordings never wait on each other in a circle.
        locked = WebhookDelivery.objects.select_for_update().filter(pk__in=[r.job.delivery_id for r in results]).order_by("pk")
        deliveries = {delivery.pk: delivery for delivery in locked}
        for r in results:
            delivery = deliveries.get(r.job.delivery_id)
            if delivery is None:  # deleted meanwhile (its endpoint was)
                continue
            _move_on(delivery, r, first_at=first_at.get(delivery.pk, r.at), manual=manual, outcome=outcome)
        recovered = _endpoints_health(results)
        _outcome_count(outcome)
    # Back after failing: what waits for it goes now, not at its backed-off time (a receiver down
    # for an hour has everything soon after it answers again). Outside the transaction above, which
    # holds delivery locks another sender may be waiting behind. A row another sender holds under
    # lease may so be sent twice; receivers drop repeats by webhook-id.
    now = max(r.at for r in results)
    for endpoint_id in recovered:
        waiting = WebhookDelivery.objects.filter(endpoint_id=endpoint_id, status=_PENDING, next_attempt_at__gt=now)
        waiting.update(next_attempt_at=now)
    return outcome


def _outcome_count(outcome: SendResult) -> None:
    """Count the recorded attempts by outcome once their recording commits (one that rolls back is tried again)."""
    counts = {"delivered": outcome.delivered, "retrying": outcome.retrying, "failed": outcome.failed}
    metrics.after_commit(lambda: metrics.counts_add(metrics.WEBHOOK_DELIVERIES, counts, label="outcome"))


def _move_on(delivery: WebhookDelivery, r: _Result, *, first_at: datetime, manual: bool, outcome: SendResult) -> None:
    delivery.attempts += 1
    delivery.last_attempt_at, delivery.last_status_code, delivery.last_error = r.at, r.status_code, r.error
    if r.ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = _DELIVERED, r.at, None
        outcome.delivered += 1
    elif delivery.status != _PENDING:
        # An operator's resend of a delivered or given-up delivery: it keeps its status.
        outcome.failed += delivery.status == _FAILED
    elif manual:
        # Resent by an operator while waiting: its own schedule goes on (the claim's lease put it ahead).
        delivery.next_attempt_at = min(delivery.next_attempt_at or r.at, r.at + timedelta(seconds=_backoff_s(1)))
        outcome.retrying += 1
    else:
        give_up_at = first_at + timedelta(seconds=settings.JIFEN_WEBHOOK_GIVE_UP_S)
        if r.at >= give_up_at:
            delivery.status, delivery.next_attempt_at = _FAILED, None
            outcome.failed += 1
        else:
            # Never later than the give-up time, so the last try happens at the day's end, not hours after.
            delivery.next_attempt_at = min(r.at + timedelta(seconds=_backoff_s(delivery.attempts)), give_up_at)
            outcome.retrying += 1
    delivery.save(
        update_fields=[
            "attempts",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "status",
            "delivered_at",
            "next_attempt_at",
        ]
    )


def _endpoints_health(results: Sequence[_Result]) -> list[int]:
    """A success clears an endpoint's failing_since; failures start it, and a day of them disables the endpoint.

    Returns the endpoints that answered again after failing.
    """
    by_endpoint: dict[int, list[_Result]] = {}
    for r in results:
        by_endpoint.setdefault(r.job.endpoint_id, []).append(r)
    now = max(r.at for r in results)
    recovered = []
    for endpoint_id, own in sorted(by_endpoint.items()):
        if any(r.ok for r in own):
            if WebhookEndpoint.objects.filter(pk=endpoint_id, failing_since__isnull=False).update(failing_since=None):
                recovered.append(endpoint_id)
            continue
        first_failure = min(r.at for r in own)
        WebhookEndpoint.objects.filter(pk=endpoint_id, failing_since__isnull=True).update(failing_since=first_failure)
        _disable_if_failing_too_long(endpoint_id=endpoint_id, now=now, last_error=own[-1].error)
    return recovered


def _disable_if_failing_too_long(*, endpoint_id: int, now: datetime, last_error: str) -> None:
    since = now - timedelta(seconds=settings.JIFEN_WEBHOOK_DISABLE_AFTER_S)
    reason = f"every attempt failed for {settings.JIFEN_WEBHOOK_DISABLE_AFTER_S} s; last: {last_error}"[:255]
    disabled = WebhookEndpoint.objects.filter(pk=endpoint_id, active=True, failing_since__lte=since).update(
        active=False, disabled_at=now, disabled_reason=reason, updated_at=now
    )
    if disabled:
        subscriptions.clear()
        logger.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)


# --- The services ------------------------------------------------------------------------------


def webhook_deliveries_send(*, budget_s: float | None = None, limit: int = CLAIM_BATCH) -> SendResult:
    """Send the due deliveries of active endpoints, claim after claim, until none is due or `budget_s` has passed.

    Returns how many arrived, will be tried again, and were given up. Never raises for a receiver's fault.
    """
    budget_s = settings.JIFEN_WEBHOOK_SEND_S * 6 if budget_s is None else budget_s
    deadline = time.monotonic() + budget_s
    total = SendResult()
    while True:
        jobs = _claim(now=timezone.now(), limit=limit)
        if not jobs:
            break
        total.add(_record(_post_all(jobs), manual=False))
        if len(jobs) < limit or time.monotonic() >= deadline:
            break
    return total


def webhook_deliveries_resend(*, deliveries: Iterable[WebhookDelivery]) -> SendResult:
    """Send these deliveries once more now, whatever their status (an operator's "send again").

    Same message id and body; the attempt is recorded as manual. Delivered ones stay delivered and
    given-up ones failed unless this attempt arrives; waiting ones keep their schedule.
    """
    ids = sorted({delivery.pk for delivery in deliveries})
    now = timezone.now()
    with transaction.atomic():
        rows = list(WebhookDelivery.objects.select_for_update(of=("self",)).select_related("endpoint").filter(pk__in=ids))
        # A waiting one is leased like a claim, so the beat sender does not send it at the same moment.
        lease_until = now + timedelta(seconds=_lease_s(len(rows)))
        WebhookDelivery.objects.filter(pk__in=[r.pk for r in rows], status=_PENDING).update(next_attempt_at=lease_until)
    for row in rows:
        if row.status == _PENDING:
            row.next_attempt_at = lease_until
    return _record(_post_all([_job(row) for row in rows]), manual=True)


def webhook_delivery_resend(*, delivery: WebhookDelivery) -> SendResult:
    """Send one delivery once more now (see `webhook_deliveries_resend`)."""
    return webhook_deliveries_resend(deliveries=[delivery])


def webhook_endpoint_create(*, name: str, url: str, event_types: Sequence[str], created_by=None) -> tuple[WebhookEndpoint, str]:
    """A new active endpoint; returns it and its secret (to be shown once)."""
    # The post_save signal (NotificationsConfig.ready) has this process reread the subscriptions.
    endpoint = WebhookEndpoint.objects.create(name=name, url=url, event_types=list(event_types), created_by=created_by)
    return endpoint, endpoint.secret


def webhook_endpoint_update(*, endpoint: WebhookEndpoint, name: str, url: str, event_types: Sequence[str], active: bool) -> None:
    """Change what an endpoint is called, where it is and what it wants; turning it on is `webhook_endpoint_enable`."""
    if active and not endpoint.active:
        webhook_endpoint_enable(endpoint=endpoint)
        endpoint.refresh_from_db()
    endpoint.name, endpoint.url, endpoint.event_types, endpoint.active = name, url, list(event_types), active
    endpoint.save(update_fields=["name", "url", "event_types", "active", "updated_at"])


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> str:
    """Give the endpoint a new secret and return it (to be shown once).

    Every attempt from now on, retries of waiting deliveries included, is signed with the new one.
    """
    secret = new_secret()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret=secret, updated_at=timezone.now())
    endpoint.secret = secret
    return secret


def webhook_endpoint_enable(*, endpoint: WebhookEndpoint) -> bool:
    """Turn an endpoint back on (after it was disabled for failing, or switched off): its waiting deliveries go now.

    Returns False if it was active already. A waiting delivery whose first attempt is more than
    JIFEN_WEBHOOK_GIVE_UP_S old gets one more attempt, and is given up if that fails.
    """
    now = timezone.now()
    with transaction.atomic():
        changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, active=False).update(
            active=True, failing_since=None, disabled_at=None, disabled_reason="", updated_at=now
        )
        if changed:
            WebhookDelivery.objects.filter(endpoint_id=endpoint.pk, status=_PENDING).update(next_attempt_at=now)
            # An UPDATE sends no post_save: this process rereads the subscriptions itself.
            transaction.on_commit(subscriptions.clear)
    return bool(changed)


def webhook_endpoint_send_test(*, endpoint: WebhookEndpoint, sent_by: str = "") -> WebhookDelivery:
    """Write a `webhook.test` delivery for this endpoint only; the sender sends it within seconds.

    Raises EndpointNotActive if the endpoint is off (nothing would send it).
    """
    if not WebhookEndpoint.objects.filter(pk=endpoint.pk, active=True).exists():
        raise EndpointNotActive(endpoint.name)
    now = timezone.now()
    data = {"endpoint_id": endpoint.pk, "endpoint": endpoint.name, "sent_by": sent_by}
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        message_id=message_id(f"{ENDPOINT_TEST}:{endpoint.pk}:{uuid.uuid4()}"),
        event_type=ENDPOINT_TEST,
        payload=webhook_body(event_type=ENDPOINT_TEST, data=data, at=now),
        status=_PENDING,
        next_attempt_at=now,
        created_at=now,
    )


def webhook_deliveries_prune(*, keep_days: int | None = None, chunk: int = 1000) -> int:
    """Delete delivered and failed deliveries (with their attempts) written more than `keep_days` ago; returns how many.

    In chunks, so no one statement holds many rows locked; waiting deliveries are never pruned.
    """
    keep_days = settings.JIFEN_WEBHOOK_KEEP_DAYS if keep_days is None else keep_days
    before = timezone.now() - timedelta(days=keep_days)
    done = 0
    while True:
        ids = list(
            WebhookDelivery.objects.filter(status__in=[_DELIVERED, _FAILED], created_at__lt=before).values_list("pk", flat=True)[
                :chunk
            ]
        )
        if not ids:
            return done
        with transaction.atomic():
            WebhookAttempt.objects.filter(delivery_id__in=ids).delete()
            WebhookDelivery.objects.filter(pk__in=ids).delete()
        done += len(ids)
