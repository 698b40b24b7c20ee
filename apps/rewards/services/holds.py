"""Holds: points another system holds on a user's account, then captures or releases (SPEC §11).

A shop's checkout paying part of an order with points places a hold when the customer checks out
(a `spend` entry at once, so the points cannot be spent twice), captures it when the order is paid
(the spend stands) and releases it when the order is abandoned (a `refund` entry that reverses the
spend and gives back the same lots, with their own expiry). A hold neither captured nor released by
its `expires_at` is released by beat (`holds_release_expired`), with the status `expired`.

Every write happens under the user's account lock (the main account's row), taken first, so a
hold, a redemption, an expiry run and a worker's awards for one user are applied one at a time.

Idempotency, so that another system may always send a call again after a timeout:

- placing with a client key its service key has used before answers the first hold and posts
  nothing; the same key with another user, type or amount is refused (`key_reused`);
- capturing a captured hold, or releasing a released (or expired) one, answers its state and posts
  nothing; capturing a released hold, or releasing a captured one, is a conflict.

A service key sees only its own holds: another key's hold id is answered as unknown.
"""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core import metrics
from apps.core.clock import local_text
from apps.core.points import POINTS_MAX
from apps.ledger.models import PointType, ScoreRecord
from apps.ledger.services.entries import EntrySpec, InsufficientBalanceError, account_lock, ledger_post_entries
from apps.rewards.models import Hold
from apps.rewards.services.announcements import hold_announce

# The shortest hold a system may place: less is surely a unit mix-up (milliseconds for seconds).
HOLD_MIN_S = 10
# Released per transaction by beat: each hold is its own short transaction under its user's lock.
RELEASE_BATCH = 500


class HoldRefused(Exception):
    """The call cannot be done as asked; nothing changed. `code` for programs, the message for people."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class HoldAnswer:
    hold: Hold
    balance: int  # the user's balance of the hold's type right after the hold's last entry (its spend, or its refund)
    changed: bool  # False: the call was answered before (same key, or the hold already in that state); nothing posted


@contextmanager
def _refusals_counted() -> Iterator[None]:
    """Count a place, capture or release call refused (HoldRefused): nothing changed, so at once."""
    try:
        yield
    except HoldRefused:
        metrics.HOLDS.labels(outcome="refused").inc()
        raise


def _counted(answer: HoldAnswer, outcome: str) -> HoldAnswer:
    """Count the call's `outcome` once the caller's transaction commits, if it changed anything (a repeat does not)."""
    if answer.changed:
        metrics.after_commit(metrics.HOLDS.labels(outcome=outcome).inc)
    return answer


def _entry_key(service_key_id: int, client_key: str) -> str:
    """The spend entry's idempotency key: one per (service key, client key), whatever the client key's length."""
    digest = hashlib.sha256(client_key.encode("utf-8")).hexdigest()[:40]
    return f"hold:{service_key_id}:{digest}"


def hold_max_s() -> int:
    return settings.JIFEN_HOLD_MAX_S


def _check_placement(*, point_type: PointType, amount: int, client_key: str, expires_in_s: int) -> None:
    if not point_type.spendable:
        raise HoldRefused(
            422, "not_spendable", _("%(type)s points cannot be spent or held.") % {"type": point_type.name or point_type.code}
        )
    if not isinstance(amount, int) or isinstance(amount, bool) or not 1 <= amount <= POINTS_MAX:
        raise HoldRefused(
            422, "bad_amount", _("The amount must be a whole number from 1 to %(max)s.") % {"max": f"{POINTS_MAX:,}"}
        )
    most = hold_max_s()
    if not isinstance(expires_in_s, int) or isinstance(expires_in_s, bool) or not HOLD_MIN_S <= expires_in_s <= most:
        raise HoldRefused(
            422,
            "bad_expiry",
            _("expires_in_s must be a whole number of seconds from %(least)d to %(most)d.") % {"least": HOLD_MIN_S, "most": most},
        )
    if not client_key or len(client_key) > Hold._meta.get_field("client_key").max_length:
        raise HoldRefused(422, "bad_key", _("The key must be 1 to 128 characters."))
    if any(ord(c) < 32 or 127 <= ord(c) < 160 or 0xD800 <= ord(c) <= 0xDFFF for c in client_key):
        raise HoldRefused(422, "bad_key", _("The key holds a control character or a lone surrogate; use printable text."))


def _balance_after(hold: Hold) -> int:
    """The balance right after the hold's last entry: the same answer however often it is asked."""
    entry_id = hold.refund_entry_id or hold.spend_entry_id
    return ScoreRecord.objects.filter(pk=entry_id).values_list("amount_after_trade", flat=True).get()


def _same_request(hold: Hold, *, user_id: int, point_type_id: int, amount: int) -> HoldAnswer:
    if (hold.user_id, hold.point_type_id, hold.amount) != (user_id, point_type_id, amount):
        raise HoldRefused(
            409,
            "key_reused",
            _("This key was used for hold %(id)d, for another user, point type or amount; use a new key for a new hold.")
            % {"id": hold.pk},
        )
    return HoldAnswer(hold, _balance_after(hold), changed=False)


def hold_place(
    *, service_key, user, point_type: PointType, amount: int, client_key: str, expires_in_s: int, description: str = ""
) -> HoldAnswer:
    """Hold `amount` points of `user`'s `point_type` for the system of `service_key`: a `spend` entry at once.

    Never takes the balance below zero: raises HoldRefused(409, "insufficient_points") instead,
    and HoldRefused (422) for a type that cannot be spent, an amount, expiry or key out of bounds.
    The same `client_key` from the same service key again answers the first hold (changed=False).
    `description` (the order's number, say) is shown to the user beside the entry.
    """
    with _refusals_counted():
        _check_placement(point_type=point_type, amount=amount, client_key=client_key, expires_in_s=expires_in_s)
        with transaction.atomic():
            # The user's lock first: a repeat of this key for this user waits here, then finds the hold.
            account = account_lock(user_id=user.pk, point_type_id=point_type.pk)
            existing = Hold.objects.filter(service_key=service_key, client_key=client_key).first()
            if existing is not None:
                return _same_request(existing, user_id=user.pk, point_type_id=point_type.pk, amount=amount)
            now = timezone.now()
            label = f"{service_key.name}: {description}" if description else service_key.name
            try:
                with transaction.atomic():
                    (entry,) = ledger_post_entries(
                        account=account,
                        entries=[
                            EntrySpec(
                                amount=-amount,
                                kind=ScoreRecord.Kind.SPEND,
                                idempotency_key=_entry_key(service_key.pk, client_key),
                                business_type=label,
                            )
                        ],
                    )
                    hold = Hold.objects.create(
                        service_key=service_key,
                        user=user,
                        point_type=point_type,
                        amount=amount,
                        client_key=client_key,
                        expires_at=now + timedelta(seconds=expires_in_s),
                        spend_entry=entry,
                    )
                    hold_announce(hold=hold)
            except InsufficientBalanceError:
                raise HoldRefused(
                    409,
                    "insufficient_points",
                    _("%(user)s has %(balance)s %(type)s points; %(amount)s cannot be held.")
                    % {"user": user.get_username(), "balance": account.balance, "type": point_type.code, "amount": amount},
                ) from None
            except IntegrityError:
                # The same key sent at once for another user (whose lock we do not hold): the first stands.
                existing = Hold.objects.filter(service_key=service_key, client_key=client_key).first()
                if existing is None:
                    raise
                return _same_request(existing, user_id=user.pk, point_type_id=point_type.pk, amount=amount)
        return _counted(HoldAnswer(hold, entry.amount_after_trade, changed=True), "placed")


def _locked_hold(*, service_key, hold_id: int) -> Hold:
    """The service key's hold, its user's lock taken (the caller's transaction), or HoldRefused(404)."""
    found = Hold.objects.filter(pk=hold_id, service_key=service_key).values_list("user_id", flat=True).first()
    if found is None:
        raise HoldRefused(404, "unknown_hold", _("This service key has no hold %(id)s.") % {"id": hold_id})
    account_lock(user_id=found)
    return Hold.objects.select_for_update().get(pk=hold_id)


def _release(hold: Hold, *, status: str, now: datetime) -> None:
    """Post the refund that reverses the hold's spend (the same lots come back) and close the hold. Under the user's lock."""
    account = account_lock(user_id=hold.user_id, point_type_id=hold.point_type_id)
    (refund,) = ledger_post_entries(
        account=account,
        entries=[
            EntrySpec(
                amount=hold.amount,
                kind=ScoreRecord.Kind.REFUND,
                idempotency_key=f"hold-release:{hold.pk}",
                business_type=ScoreRecord.objects.filter(pk=hold.spend_entry_id).values_list("business_type", flat=True).get(),
                reverses_id=hold.spend_entry_id,
            )
        ],
    )
    hold.status, hold.refund_entry, hold.decided_at = status, refund, now
    hold.save(update_fields=["status", "refund_entry", "decided_at"])
    hold_announce(hold=hold)


def _conflict(hold: Hold) -> HoldRefused:
    when = local_text(hold.decided_at) if hold.decided_at else ""
    if hold.status == Hold.Status.CAPTURED:
        message = _("Hold %(id)d was captured at %(when)s; it cannot be released now.")
        code = "hold_captured"
    elif hold.status == Hold.Status.EXPIRED:
        message = _("Hold %(id)d expired and its points were given back at %(when)s; it cannot be captured now.")
        code = "hold_expired"
    else:
        message = _("Hold %(id)d was released at %(when)s; it cannot be captured now.")
        code = "hold_released"
    return HoldRefused(409, code, message % {"id": hold.pk, "when": when})


def hold_capture(*, service_key, hold_id: int) -> HoldAnswer:
    """Keep the held points for good (the order was paid): no entry, the spend stands.

    A captured hold answers as it is (changed=False). A released or expired hold, or one past its
    `expires_at` (beat will release it), is a conflict (409).
    """
    with _refusals_counted():
        return _counted(_capture(service_key, hold_id), "captured")


def _capture(service_key, hold_id: int) -> HoldAnswer:
    with transaction.atomic():
        hold = _locked_hold(service_key=service_key, hold_id=hold_id)
        if hold.status == Hold.Status.CAPTURED:
            return HoldAnswer(hold, _balance_after(hold), changed=False)
        if hold.status != Hold.Status.HELD:
            raise _conflict(hold)
        now = timezone.now()
        if hold.expires_at <= now:
            raise HoldRefused(
                409,
                "hold_expired",
                _("Hold %(id)d expired at %(when)s; its points are given back. Place a new hold.")
                % {"id": hold.pk, "when": local_text(hold.expires_at)},
            )
        hold.status, hold.decided_at = Hold.Status.CAPTURED, now
        hold.save(update_fields=["status", "decided_at"])
        hold_announce(hold=hold)
    return HoldAnswer(hold, _balance_after(hold), changed=True)


def hold_release(*, service_key, hold_id: int) -> HoldAnswer:
    """Give the held points back (the order was abandoned): a `refund` entry, the same lots back.

    A released or expired hold answers as it is (changed=False); a captured one is a conflict (409).
    """
    with _refusals_counted():
        return _counted(_release_call(service_key, hold_id), "released")


def _release_call(service_key, hold_id: int) -> HoldAnswer:
    with transaction.atomic():
        hold = _locked_hold(service_key=service_key, hold_id=hold_id)
        if hold.status in (Hold.Status.RELEASED, Hold.Status.EXPIRED):
            return HoldAnswer(hold, _balance_after(hold), changed=False)
        if hold.status != Hold.Status.HELD:
            raise _conflict(hold)
        _release(hold, status=Hold.Status.RELEASED, now=timezone.now())
    return HoldAnswer(hold, _balance_after(hold), changed=True)


def holds_release_expired(*, now: datetime | None = None) -> int:
    """Beat: release every hold still held at its `expires_at`, once each (status `expired`); return how many.

    Each hold is released in its own short transaction under its user's lock, and is read again
    under it: a capture or release that came first wins, and two runs at once release it once.
    """
    now = now or timezone.now()
    released = 0
    while True:
        due = list(
            Hold.objects.filter(status=Hold.Status.HELD, expires_at__lte=now)
            .order_by("expires_at", "id")
            .values_list("pk", "user_id")[:RELEASE_BATCH]
        )
        for hold_id, user_id in due:
            with transaction.atomic():
                account_lock(user_id=user_id)
                hold = Hold.objects.select_for_update().get(pk=hold_id)
                if hold.status == Hold.Status.HELD and hold.expires_at <= now:
                    _release(hold, status=Hold.Status.EXPIRED, now=timezone.now())
                    metrics.after_commit(metrics.HOLDS.labels(outcome="expired").inc)
                    released += 1
        if len(due) < RELEASE_BATCH:
            return released
