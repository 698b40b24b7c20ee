"""Operators' adjustments (SPEC §5): requested, posted at once or approved by a second operator."""

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.db.models.functions import Abs
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core.points import POINTS_MAX
from apps.ledger.models import Account, Adjustment, PointType, ScoreRecord
from apps.ledger.point_types import default_point_type_id
from apps.ledger.services.entries import account_lock, ledger_post_entry

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# No operator types a billion points on purpose; the bound keeps a slip of the keyboard out of the ledger.
ADJUSTMENT_MAX_POINTS = POINTS_MAX
REQUEST_PERMISSION = "ledger.add_adjustment"
APPROVE_PERMISSION = "ledger.approve_adjustment"


class AdjustmentRefused(Exception):
    """An adjustment cannot be requested or decided as asked. Nothing changed; the message says why."""


class AdjustmentForbidden(AdjustmentRefused):
    """This operator may not do that: no permission, their own request, or their own account."""


@dataclass(frozen=True)
class AdjustmentRequested:
    adjustment: Adjustment
    created: bool  # False: this request token was submitted before, and nothing new happened


# The threshold holds for what one operator gives or takes one user within this window, not per
# adjustment: otherwise 5,000 points go through as five 1,000s without a second pair of eyes.
APPROVAL_WINDOW = timedelta(hours=24)


def approval_threshold(point_type: PointType | None = None) -> int:
    """The points one operator may move for one user within APPROVAL_WINDOW without a second operator.

    The type's own `adjustment_approval_above`, or settings.JIFEN_ADJUSTMENT_APPROVAL_ABOVE when
    it has none (or for no type: the default's setting).
    """
    if point_type is not None and point_type.adjustment_approval_above is not None:
        return point_type.adjustment_approval_above
    return settings.JIFEN_ADJUSTMENT_APPROVAL_ABOVE


def adjustment_needs_approval(*, amount: int, recent_total: int = 0, point_type: PointType | None = None) -> bool:
    """Whether an adjustment of `amount` waits for a second operator instead of being posted at once.

    `recent_total` is what the same requester already asked for the same user in the same point
    type within APPROVAL_WINDOW (see `adjustment_recent_total`); credits and debits both count by
    size. The threshold is the type's (`approval_threshold`).
    """
    return recent_total + abs(amount) > approval_threshold(point_type)


def _of_type(point_type_id: int) -> Q:
    """Adjustments of the type; one that names none is the default type's."""
    if point_type_id == default_point_type_id():
        return Q(point_type_id=point_type_id) | Q(point_type__isnull=True)
    return Q(point_type_id=point_type_id)


def adjustment_recent_total(*, user_id: int, requested_by_id: int, point_type_id: int | None = None) -> int:
    """The sum of |amount| of one requester's posted and pending adjustments to one user in one point type in the last 24 hours.

    Rejected ones are left out: they moved no points and will not. Credits and debits add up by
    size, not net: +900 then -900 moved 1,800 points by one operator's hand. Each point type is
    counted apart (None: the default type), against its own threshold.
    """
    since = timezone.now() - APPROVAL_WINDOW
    total = (
        Adjustment.objects.filter(
            _of_type(point_type_id or default_point_type_id()),
            user_id=user_id,
            requested_by_id=requested_by_id,
            created_at__gte=since,
            status__in=(Adjustment.Status.PENDING, Adjustment.Status.POSTED),
        )
        .annotate(size=Abs("amount"))
        .aggregate(total=Sum("size"))["total"]
    )
    return total or 0


def adjustment_request(
    *,
    user_id: int,
    amount: int,
    reason: str,
    request_token: uuid.UUID,
    actor: "AbstractBaseUser",
    point_type_id: int | None = None,
) -> AdjustmentRequested:
    """Record an operator's credit (amount > 0) or debit (amount < 0) of one point type for a user; post it if small enough.

    `point_type_id` None is the default type. It is posted at once (the requester is also the one
    who decided) while this requester's adjustments of this type to this user within 24 hours,
    this one included, add up to at most the type's threshold (`approval_threshold`) by size; the
    one that takes the sum over, and any after it, stay pending until another operator approves
    them. Submitting the same
    `request_token` again returns the first adjustment with created=False and changes nothing.
    Raises AdjustmentForbidden without the add permission or for the operator's own account, and
    AdjustmentRefused for a zero or oversized amount, an empty or overlong reason, an unknown point
    type, or a debit that would take the type's balance below zero.
    """
    if not actor.has_perm(REQUEST_PERMISSION):
        raise AdjustmentForbidden(_("You do not have permission to request adjustments."))
    if actor.pk == user_id:
        raise AdjustmentForbidden(_("Operators cannot adjust their own balance; ask another operator."))
    reason = reason.strip()
    if not reason:
        raise AdjustmentRefused(_("Give a reason for the adjustment."))
    if len(reason) > Adjustment._meta.get_field("reason").max_length:
        raise AdjustmentRefused(_("The reason is too long (at most 500 characters)."))
    if amount == 0 or abs(amount) > ADJUSTMENT_MAX_POINTS:
        raise AdjustmentRefused(
            _("The amount must be a non-zero whole number of at most %(max)s points either way.")
            % {"max": f"{ADJUSTMENT_MAX_POINTS:,}"}
        )
    point_type = PointType.objects.filter(pk=point_type_id or default_point_type_id()).first()
    if point_type is None:
        raise AdjustmentRefused(_("There is no such point type; nothing was changed."))
    with transaction.atomic():
        # The account lock first, as for every balance change. A second submit of the same form
        # waits here until the first commits, then finds its token below.
        account = account_lock(user_id=user_id, point_type_id=point_type.pk)
        existing = Adjustment.objects.filter(request_token=request_token).first()
        if existing is not None:
            return AdjustmentRequested(existing, created=False)
        _refuse_below_zero(account, amount)
        recent_total = adjustment_recent_total(user_id=user_id, requested_by_id=actor.pk, point_type_id=point_type.pk)
        adjustment = Adjustment(
            user_id=user_id,
            point_type=point_type,
            amount=amount,
            reason=reason,
            requested_by=actor,
            request_token=request_token,
        )
        try:
            with transaction.atomic():
                _save_with_history(adjustment, actor=actor, reason="requested")
        except IntegrityError:
            # The same token sent for another user (whose lock we do not hold): the first stands.
            return AdjustmentRequested(Adjustment.objects.get(request_token=request_token), created=False)
        # Counted under the account lock (taken above), so two requests at once for this user
        # are counted one after the other: they cannot both slip under the threshold.
        if not adjustment_needs_approval(amount=amount, recent_total=recent_total, point_type=point_type):
            _post(adjustment, account=account, actor=actor, reason="posted at once")
    return AdjustmentRequested(adjustment, created=True)


def adjustment_approve(*, adjustment: Adjustment, actor: "AbstractBaseUser") -> Adjustment:
    """Post a pending adjustment on a second operator's word; return it, now posted.

    Runs under the adjustment's row lock, so two approvals at once post one entry: the second
    finds it already posted and is refused. Raises AdjustmentForbidden without the approve
    permission, for the requester, or for the adjusted user; AdjustmentRefused when it is no
    longer pending or would take the balance below zero (it then stays pending).
    """
    if not actor.has_perm(APPROVE_PERMISSION):
        raise AdjustmentForbidden(_("You do not have permission to approve adjustments."))
    with transaction.atomic():
        locked = _lock_pending(adjustment, actor=actor)
        account = account_lock(user_id=locked.user_id, point_type_id=locked.point_type_id)
        _post(locked, account=account, actor=actor, reason="approved")
    return locked


def adjustment_reject(*, adjustment: Adjustment, actor: "AbstractBaseUser") -> Adjustment:
    """Refuse a pending adjustment: it is kept, as rejected, and posts nothing. Same checks as approving."""
    if not actor.has_perm(APPROVE_PERMISSION):
        raise AdjustmentForbidden(_("You do not have permission to reject adjustments."))
    with transaction.atomic():
        locked = _lock_pending(adjustment, actor=actor)
        locked.status = Adjustment.Status.REJECTED
        locked.decided_by, locked.decided_at = actor, timezone.now()
        _save_with_history(locked, actor=actor, reason="rejected")
    return locked


def _lock_pending(adjustment: Adjustment, *, actor: "AbstractBaseUser") -> Adjustment:
    locked = Adjustment.objects.select_for_update().get(pk=adjustment.pk)
    if locked.status != Adjustment.Status.PENDING:
        raise AdjustmentRefused(
            _("This adjustment is already %(status)s (by %(operator)s); nothing was changed.")
            % {"status": locked.get_status_display(), "operator": locked.decided_by}
        )
    if locked.requested_by_id == actor.pk:
        raise AdjustmentForbidden(_("You requested this adjustment; another operator must approve or reject it."))
    if locked.user_id == actor.pk:
        raise AdjustmentForbidden(_("This adjustment is for your own account; another operator must decide it."))
    return locked


def _refuse_below_zero(account: Account, amount: int) -> None:
    if account.balance + amount < 0:
        raise AdjustmentRefused(
            _("This would take the balance below zero (balance %(balance)s, adjustment %(amount)s); nothing was changed.")
            % {"balance": account.balance, "amount": f"{amount:+d}"}
        )


def _post(adjustment: Adjustment, *, account: Account, actor: "AbstractBaseUser", reason: str) -> None:
    """Append the adjustment's entry and mark it posted; `account` is locked by the caller."""
    _refuse_below_zero(account, adjustment.amount)
    entry = ledger_post_entry(
        account=account,
        amount=adjustment.amount,
        kind=ScoreRecord.Kind.ADJUSTMENT,
        # Keyed by the form's token: whatever happens around it, one request posts one entry.
        idempotency_key=f"adjustment:{adjustment.request_token}",
        business_type=adjustment.reason,
    )
    if entry is None:
        raise AdjustmentRefused(_("This adjustment has already been posted; nothing was changed."))
    adjustment.status, adjustment.entry = Adjustment.Status.POSTED, entry
    adjustment.decided_by, adjustment.decided_at = actor, entry.created_at
    _save_with_history(adjustment, actor=actor, reason=reason)


def _save_with_history(adjustment: Adjustment, *, actor: "AbstractBaseUser", reason: str) -> None:
    adjustment._history_user = actor
    adjustment._change_reason = reason
    adjustment.save()
