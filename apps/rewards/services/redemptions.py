"""Redeeming points in the shop, and operators fulfilling or cancelling redemptions (SPEC §11).

Every write happens under the user's account lock (`account_lock`: the main account's row), so a
user's redemptions, limits and balance are decided one at a time. Stock is taken by one
conditional UPDATE of the item's `redeemed_count`, never read and then written, so any number of
users racing for the last units get exactly the stock (G13). Lock order is always the user's lock
first, then the item's row (which the UPDATE takes), in redeeming and cancelling alike.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core import metrics
from apps.core.clock import local_text
from apps.core.text import text_problem
from apps.ledger.models import Account, ScoreRecord
from apps.ledger.services.entries import InsufficientBalanceError, account_lock, ledger_post_entry
from apps.rewards import eligibility
from apps.rewards.eligibility import RedemptionRefused
from apps.rewards.models import Redemption, RewardItem
from apps.rewards.services.announcements import redemption_announce

FULFIL_PERMISSION = "rewards.fulfil_redemption"
KEY_MAX_LENGTH = Redemption._meta.get_field("client_key").max_length
NOTE_MAX_LENGTH = Redemption._meta.get_field("note").max_length


class RedemptionForbidden(PermissionDenied):
    """This operator may not fulfil or cancel redemptions; nothing changed."""


class RedemptionDecisionRefused(Exception):
    """A redemption cannot be fulfilled or cancelled as asked (its status, a missing note); nothing changed."""


@dataclass(frozen=True)
class Redeemed:
    redemption: Redemption
    created: bool  # False: this key was used before; the first redemption, and nothing new was posted
    balance: int  # the user's balance of the item's point type, now


# --- Redeeming ----------------------------------------------------------------------------------


def redemption_create(*, user, item_code: str, client_key: str) -> Redeemed:
    """Redeem one unit of the item `item_code` for `user`, paid at once with a `spend` entry.

    Under the user's lock, refuses with RedemptionRefused, in this order: not_available (no such
    item, not active, outside its window, soft-deleted, or its point type cannot be spent),
    level_required, limit_reached (redemptions not cancelled in the limit's current period, in the
    site's time zone), insufficient_points, out_of_stock. The same `client_key` from the same user
    returns the first redemption (created=False) and posts nothing, also when both arrive at once;
    the key used for another item is refused (key_reused).
    """
    try:
        redeemed = _create(user, item_code, client_key)
    except RedemptionRefused as refused:
        metrics.REDEMPTIONS.labels(outcome=f"refused_{refused.code}").inc()
        raise
    if redeemed.created:
        metrics.after_commit(metrics.REDEMPTIONS.labels(outcome="redeemed").inc)
    return redeemed


def _create(user, item_code: str, client_key: str) -> Redeemed:
    key = _checked_key(client_key)
    item_code = str(item_code)
    # Read once, before the lock: which account to lock, and the checks. What an operator may
    # change meanwhile (status, soft delete, stock) the stock's UPDATE checks again.
    item = (
        RewardItem.all_objects.select_related("point_type", "min_level__point_type")
        .filter(code=item_code)
        .order_by(F("deleted_at").asc(nulls_first=True), "-pk")
        .first()
    )
    if item is None:
        raise eligibility.unknown_item(item_code)
    try:
        with transaction.atomic():
            account = account_lock(user_id=user.pk, point_type_id=item.point_type_id)
            # Under the lock: a request with the same key that was ahead of us has committed by now.
            first = _by_key(user.pk, key, item_code)
            if first is not None:
                return Redeemed(first, created=False, balance=account.balance)
            return _redeem(user, item, key, account)
    except IntegrityError:
        # The unique (user, client_key) constraint: the same key raced past both looks (only if the
        # lock were bypassed); the first one stands.
        first = _by_key(user.pk, key, item_code)
        if first is None:
            raise
        return Redeemed(first, created=False, balance=_balance(user.pk, first.point_type_id))


def _redeem(user, item: RewardItem, key: str, account: Account) -> Redeemed:
    """The checks and the writes, under the user's lock (held by the caller's transaction)."""
    now = timezone.now()
    refusal = eligibility.refusal_of(
        item,
        now=now,
        earned=_earned(user.pk, item),
        used=_used(user.pk, item, now=now),
        balance=account.balance,
        # Sold out as far as the row says: no need to post and roll back. Not the decision: the UPDATE below is.
        stock_as_read=True,
    )
    if refusal is not None:
        raise refusal
    try:
        spend = ledger_post_entry(
            account=account,
            amount=-item.cost,
            kind=ScoreRecord.Kind.SPEND,
            idempotency_key=f"redemption:{user.pk}:{hashlib.sha256(key.encode()).hexdigest()}",
            business_type=f"redemption:{item.code}",
        )
    except InsufficientBalanceError:
        raise eligibility.balance_refusal(item, balance=account.balance) or RedemptionRefused(
            eligibility.INSUFFICIENT_POINTS, _("Not enough points.")
        ) from None
    if spend is None:  # the key's spend exists without its redemption: never, short of a hand-made row
        raise RuntimeError(f"redemption key {key!r} of user {user.pk} has a spend entry but no redemption")
    if not _take_stock(item.pk):
        # Raising rolls the spend back with the rest of the transaction.
        fresh = RewardItem.all_objects.select_related("point_type").get(pk=item.pk)
        raise eligibility.availability_refusal(fresh, now=now) or eligibility.out_of_stock(fresh)
    redemption = Redemption(
        user=user, item=item, point_type_id=item.point_type_id, cost=item.cost, client_key=key, spend_entry=spend
    )
    redemption._history_user = user
    redemption._change_reason = "redeemed"
    redemption.save()
    redemption_announce(redemption=redemption)
    return Redeemed(redemption, created=True, balance=account.balance)


def _take_stock(item_id: int) -> bool:
    """Take one unit: one conditional UPDATE, so the stock holds whatever the number of users racing (G13).

    Also re-checks that the item is live: an operator who retires it meanwhile wins.
    """
    taken = (
        RewardItem.all_objects.filter(pk=item_id, status=RewardItem.Status.ACTIVE, deleted_at__isnull=True)
        .filter(Q(stock__isnull=True) | Q(redeemed_count__lt=F("stock")))
        .update(redeemed_count=F("redeemed_count") + 1)
    )
    return taken == 1


def _checked_key(client_key) -> str:
    key = client_key if isinstance(client_key, str) else ""
    if not key or len(key) > KEY_MAX_LENGTH or text_problem(key) or not key.strip():
        raise RedemptionRefused(
            eligibility.BAD_KEY,
            _("The key must be 1 to %(max)d characters, without control characters: one new key per redemption.")
            % {"max": KEY_MAX_LENGTH},
        )
    return key


def _by_key(user_id: int, key: str, item_code: str) -> Redemption | None:
    """The user's redemption made with `key`, or None; refuses a key first used for another item."""
    first = Redemption.objects.select_related("item", "point_type").filter(user_id=user_id, client_key=key).first()
    if first is not None and first.item.code != item_code:
        raise RedemptionRefused(
            eligibility.KEY_REUSED,
            _("This key was already used to redeem %(item)s; send a new key for each redemption.") % {"item": first.item.name},
        )
    return first


def _balance(user_id: int, point_type_id: int) -> int:
    found = Account.objects.filter(user_id=user_id, point_type_id=point_type_id).values_list("balance", flat=True).first()
    return found or 0


def _earned(user_id: int, item: RewardItem) -> int:
    """Lifetime earned points in the type of the item's minimum level (0 without one)."""
    if item.min_level is None:
        return 0
    found = (
        Account.objects.filter(user_id=user_id, point_type_id=item.min_level.point_type_id)
        .values_list("earned_total", flat=True)
        .first()
    )
    return found or 0


def _used(user_id: int, item: RewardItem, *, now) -> int:
    """The user's redemptions of `item` in its limit's current period, cancelled ones left out (0 without a limit)."""
    window = eligibility.limit_window(item, now=now)
    if window is None:
        return 0
    start, end = window
    mine = Redemption.objects.filter(user_id=user_id, item_id=item.pk, created_at__gte=start).exclude(
        status=Redemption.Status.CANCELLED
    )
    if end is not None:
        mine = mine.filter(created_at__lt=end)
    return mine.count()


# --- Fulfilling and cancelling (operators) ----------------------------------------------------


def _check_permission(actor) -> None:
    if actor is None or not actor.has_perm(FULFIL_PERMISSION):
        raise RedemptionForbidden(_("You do not have permission to fulfil or cancel redemptions."))


def redemption_fulfil(*, redemption: Redemption, actor) -> Redemption:
    """Mark a pending redemption fulfilled (the user got the item); return it.

    Idempotent: one already fulfilled is returned unchanged. Raises RedemptionForbidden without
    the permission, RedemptionDecisionRefused for a cancelled one.
    """
    _check_permission(actor)
    with transaction.atomic():
        account_lock(user_id=redemption.user_id)
        locked = Redemption.objects.select_related("item", "user").get(pk=redemption.pk)
        if locked.status == Redemption.Status.FULFILLED:
            return locked
        if locked.status == Redemption.Status.CANCELLED:
            raise RedemptionDecisionRefused(
                _("%(redemption)s was cancelled and refunded; it cannot be fulfilled.") % {"redemption": _named(locked)}
            )
        locked.status = Redemption.Status.FULFILLED
        locked.decided_by, locked.decided_at = actor, timezone.now()
        locked._history_user, locked._change_reason = actor, "fulfilled"
        locked.save(update_fields=["status", "decided_by", "decided_at"])
        redemption_announce(redemption=locked)
        metrics.after_commit(metrics.REDEMPTIONS.labels(outcome="fulfilled").inc)
    return locked


def redemption_cancel(*, redemption: Redemption, actor, note: str) -> Redemption:
    """Cancel a pending redemption: refund its points (the same lots come back) and give its unit back to the stock.

    The refund is a `refund` entry whose `reverses` is the spend. `note` (why; the user sees it) is
    required. Idempotent: one already cancelled is returned unchanged. Raises RedemptionForbidden
    without the permission, RedemptionDecisionRefused for a fulfilled one or a missing note.
    """
    _check_permission(actor)
    note = _checked_note(note)
    with transaction.atomic():
        account = account_lock(user_id=redemption.user_id, point_type_id=redemption.point_type_id)
        locked = Redemption.objects.select_related("item", "user").get(pk=redemption.pk)
        if locked.status == Redemption.Status.CANCELLED:
            return locked
        if locked.status == Redemption.Status.FULFILLED:
            raise RedemptionDecisionRefused(
                _("%(redemption)s was fulfilled already; it cannot be cancelled.") % {"redemption": _named(locked)}
            )
        refund = ledger_post_entry(
            account=account,
            amount=locked.cost,
            kind=ScoreRecord.Kind.REFUND,
            reverses_id=locked.spend_entry_id,
            idempotency_key=f"redemption-refund:{locked.pk}",
            business_type=f"redemption:{locked.item.code} cancelled",
        )
        if refund is None:  # the refund exists but the redemption says pending: never, short of a hand-made row
            raise RuntimeError(f"redemption {locked.pk} has a refund entry but is {locked.status}")
        # The user's lock first, then the item's row (this UPDATE), as when redeeming.
        RewardItem.all_objects.filter(pk=locked.item_id, redeemed_count__gt=0).update(redeemed_count=F("redeemed_count") - 1)
        locked.status, locked.refund_entry, locked.note = Redemption.Status.CANCELLED, refund, note
        locked.decided_by, locked.decided_at = actor, timezone.now()
        locked._history_user, locked._change_reason = actor, "cancelled"
        locked.save(update_fields=["status", "refund_entry", "note", "decided_by", "decided_at"])
        redemption_announce(redemption=locked)
        metrics.after_commit(metrics.REDEMPTIONS.labels(outcome="cancelled").inc)
    return locked


def _checked_note(note) -> str:
    note = note.strip() if isinstance(note, str) else ""
    if not note:
        raise RedemptionDecisionRefused(_("Say why the redemption is cancelled: the user sees this note."))
    if len(note) > NOTE_MAX_LENGTH:
        raise RedemptionDecisionRefused(_("The note is too long (at most %(max)d characters).") % {"max": NOTE_MAX_LENGTH})
    problem = text_problem(note, free_text=True)
    if problem:
        raise RedemptionDecisionRefused(_("The note %(problem)s.") % {"problem": problem})
    return note


def _named(redemption: Redemption) -> str:
    return _("%(item)s for %(user)s (redeemed %(when)s)") % {
        "item": redemption.item.name,
        "user": redemption.user,
        "when": local_text(redemption.created_at),
    }


# --- Bulk, for the admin's queue -----------------------------------------------------------------


@dataclass
class Decided:
    """What a bulk fulfil or cancel did: each redemption in its own transaction, so one refusal stops no other."""

    changed: list[Redemption] = field(default_factory=list)
    unchanged: list[Redemption] = field(default_factory=list)  # already in the status asked for
    refused: list[tuple[Redemption, str]] = field(default_factory=list)


def redemptions_fulfil(*, redemptions: Iterable[Redemption], actor) -> Decided:
    """Fulfil each pending redemption; see `redemption_fulfil`. Raises RedemptionForbidden before touching any."""
    _check_permission(actor)
    return _each(redemptions, Redemption.Status.FULFILLED, lambda r: redemption_fulfil(redemption=r, actor=actor))


def redemptions_cancel(*, redemptions: Iterable[Redemption], actor, note: str) -> Decided:
    """Cancel and refund each pending redemption with the same note; see `redemption_cancel`."""
    _check_permission(actor)
    note = _checked_note(note)
    return _each(redemptions, Redemption.Status.CANCELLED, lambda r: redemption_cancel(redemption=r, actor=actor, note=note))


def _each(redemptions: Iterable[Redemption], target: str, decide) -> Decided:
    outcome = Decided()
    for redemption in sorted(redemptions, key=lambda r: r.pk):
        before = Redemption.objects.filter(pk=redemption.pk).values_list("status", flat=True).first()
        try:
            decided = decide(redemption)
        except RedemptionDecisionRefused as refused:
            outcome.refused.append((redemption, str(refused)))
            continue
        (outcome.unchanged if before == target else outcome.changed).append(decided)
    return outcome
