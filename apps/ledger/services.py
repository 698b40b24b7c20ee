"""Writes to the ledger. Every balance change goes through `ledger_post_entry`."""

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.ledger.models import Account, ScoreRecord


class InsufficientBalanceError(Exception):
    """An adjustment would take the balance below zero."""


@dataclass(frozen=True)
class EntryMeta:
    """Where the points were earned: copied from the event onto the entry."""

    location: str = ""
    country: str = ""
    lang_type: str = ""


def account_lock(*, user_id: int) -> Account:
    """Return the user's account, created if missing, locked until the transaction ends.

    Every write that concerns one user (completions, progress, ledger entries) happens under this
    lock, so one user's events are applied one at a time whatever the number of workers. Callers
    that need several accounts must lock them in ascending user id order.
    """
    Account.objects.get_or_create(user_id=user_id)
    return Account.objects.select_for_update().get(user_id=user_id)


def _serial_number(*, account: Account, seq: int) -> str:
    now = timezone.now()
    return f"{now:%Y%m%d%H%M%S}{now.microsecond:06d}-{account.pk}-{seq}"


def ledger_post_entry(
    *,
    account: Account,
    amount: int,
    kind: str,
    idempotency_key: str,
    business_type: str = "",
    rule_id: int | None = None,
    completion_id: int | None = None,
    score_info_id: int | None = None,
    reverses_id: int | None = None,
    meta: EntryMeta = EntryMeta(),
) -> ScoreRecord | None:
    """Append one entry to `account` and move its balance; return the entry.

    `account` must come from `account_lock` in the current transaction. Returns None, and changes
    nothing, when an entry with `idempotency_key` already exists. Raises InsufficientBalanceError
    when an adjustment would take the balance below zero (awards and reversals may).
    """
    if amount == 0:
        raise ValueError("a ledger entry moves a non-zero amount")
    before = account.balance
    after = before + amount
    if kind == ScoreRecord.Kind.ADJUSTMENT and after < 0:
        raise InsufficientBalanceError(f"balance {before} cannot take {amount}")
    seq = account.last_seq + 1
    try:
        with transaction.atomic():
            entry = ScoreRecord.objects.create(
                account=account,
                user_id=account.user_id,
                serial_number=_serial_number(account=account, seq=seq),
                seq=seq,
                trade_amount=amount,
                amount_before_trade=before,
                amount_after_trade=after,
                business_type=business_type[:255],
                kind=kind,
                rule_id=rule_id,
                completion_id=completion_id,
                score_info_id=score_info_id,
                reverses_id=reverses_id,
                location=meta.location,
                country=meta.country,
                lang_type=meta.lang_type,
                idempotency_key=idempotency_key,
            )
    except IntegrityError:
        if ScoreRecord.objects.filter(idempotency_key=idempotency_key).exists():
            return None
        raise
    account.balance = after
    account.last_seq = seq
    account.last_activity_at = entry.created_at
    account.save(update_fields=["balance", "last_seq", "last_activity_at", "updated_at"])
    return entry
