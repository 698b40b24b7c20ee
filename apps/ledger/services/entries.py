"""Accounts and ledger entries: every balance change goes through `ledger_post_entry` or its batch forms."""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.core.clock import serial_stamp
from apps.core.multirow import fetch, int_list, rows_insert, rows_update
from apps.ledger.models import Account, PointType, ScoreRecord
from apps.ledger.point_types import default_point_type_id
from apps.ledger.services.announcements import Earned, Posted, entries_announce
from apps.ledger.services.leaderboard import COUNTED_KINDS, Contribution, leaderboard_totals_add
from apps.ledger.services.lots import lots_book


class InsufficientBalanceError(Exception):
    """A debit other than a reversal (an adjustment, a spend, a hold, an expiry) would take the balance below zero."""


# Kinds that may not take a balance below zero (SPEC §5, invariant 5); a reversal may.
_BOUNDED_DEBITS = frozenset({"adjustment", "spend", "expiry"})
# Kinds that count towards `Account.earned_total` (levels): awards, their reversals, credit adjustments.
_EARNING = frozenset({"award", "reversal"})


@dataclass(frozen=True)
class EntryMeta:
    """Where the points were earned: copied from the event onto the entry."""

    location: str = ""
    country: str = ""
    lang_type: str = ""


def account_lock(*, user_id: int, point_type_id: int | None = None) -> Account:
    """Lock the user's main account until the transaction ends; return the account of `point_type_id`.

    The main account (the default type's) is the user's lock: every write that concerns one user
    (completions, progress, ledger entries of any type, lots, redemptions, holds) happens under
    it, so one user's events are applied one at a time whatever the number of workers. Accounts
    are created when missing: the main one before locking, another type's under the lock. Callers
    that need several users must lock them in ascending user id order (`accounts_lock`).
    """
    default = default_point_type_id()
    account = Account.objects.select_for_update().filter(user_id=user_id, point_type_id=default).first()
    if account is None:  # first points ever: create, then lock like everyone else
        Account.objects.get_or_create(user_id=user_id, point_type_id=default)
        account = Account.objects.select_for_update().get(user_id=user_id, point_type_id=default)
    if point_type_id is None or point_type_id == default:
        return account
    return Account.objects.get_or_create(user_id=user_id, point_type_id=point_type_id)[0]


def accounts_ensure(*, user_ids: Iterable[int]) -> None:
    """Create the main accounts that do not exist yet (balance 0), outside any lock; existing ones are left alone.

    Run before a batch's transaction, so that the batch can lock every account in one statement.
    """
    default = default_point_type_id()
    Account.objects.bulk_create([Account(user_id=user_id, point_type_id=default) for user_id in user_ids], ignore_conflicts=True)


# Model.from_db fills a model read with some columns by matching them to its fields *in the
# model's field order*: listed in another order, values land in the wrong fields (balance in
# earned_total…). So the list is put in that order here, whatever order it is written in.
_ACCOUNT_COLUMNS = tuple(
    sorted(
        ("id", "user_id", "point_type_id", "balance", "last_seq", "earned_total"),
        key=[field.attname for field in Account._meta.concrete_fields].index,
    )
)
_COLUMNS_WITH_POLICY = (
    ", ".join(f"a.{column}" for column in _ACCOUNT_COLUMNS)
    + f", t.expiry, t.expiry_months FROM {Account._meta.db_table} a JOIN {PointType._meta.db_table} t ON t.id = a.point_type_id"
)


def _account_from_row(row: tuple) -> Account:
    """An account read with `_COLUMNS_WITH_POLICY`, its type's expiry policy kept as `policy` (for the lots)."""
    account = Account.from_db(connection.alias, _ACCOUNT_COLUMNS, row[: len(_ACCOUNT_COLUMNS)])
    account.policy = tuple(row[len(_ACCOUNT_COLUMNS) :])
    return account


def accounts_lock(*, user_ids: Iterable[int], skip_locked: bool = False) -> dict[int, Account]:
    """Lock the main accounts of `user_ids` until the transaction ends, in ascending user id order.

    One statement: PostgreSQL sorts the rows before locking them, so every caller takes its locks
    in the same global order and two callers cannot deadlock on accounts. With `skip_locked`,
    accounts that another transaction holds are left out instead of waited for. Returns
    {user_id: main account}; users without one are missing from it (see `accounts_ensure`).
    """
    users = int_list(sorted(user_ids))
    if not users:
        return {}
    lock = ""
    if connection.features.has_select_for_update:
        skip = " SKIP LOCKED" if skip_locked and connection.features.has_select_for_update_skip_locked else ""
        lock = f" FOR UPDATE OF a{skip}"
    # Only what posting reads (the other fields are deferred, as with `.only()`): a batch locks a
    # hundred accounts, and a hand-written read costs a fraction of the ORM's Python. The type's
    # expiry policy comes along, for the lots of the batch's credits (no round trip of their own).
    rows = fetch(f"SELECT {_COLUMNS_WITH_POLICY} WHERE a.user_id IN ({users}) AND t.is_default ORDER BY a.user_id{lock}")  # noqa: S608
    return {row[1]: _account_from_row(row) for row in rows}


def _siblings(wanted: set[tuple[int, int]]) -> dict[tuple[int, int], Account]:
    """{(user_id, point_type_id): account} for non-main accounts, created when missing.

    Their users' main accounts are locked by the caller, which is what guards them.
    """
    if not wanted:
        return {}
    users, types = int_list({u for u, _ in wanted}), int_list({t for _, t in wanted})
    sql = f"SELECT {_COLUMNS_WITH_POLICY} WHERE a.user_id IN ({users}) AND a.point_type_id IN ({types})"  # noqa: S608 - integers only
    found = {(row[1], row[2]): _account_from_row(row) for row in fetch(sql)}
    missing = wanted - set(found)
    if missing:
        Account.objects.bulk_create([Account(user_id=u, point_type_id=t) for u, t in sorted(missing)], ignore_conflicts=True)
        found = {(row[1], row[2]): _account_from_row(row) for row in fetch(sql)}
    return {key: found[key] for key in wanted}


@dataclass(frozen=True)
class EntrySpec:
    """One entry to post: what moves and why. Balances and sequence numbers are the ledger's."""

    amount: int
    kind: str
    idempotency_key: str
    business_type: str = ""
    rule_id: int | None = None
    completion_id: int | None = None
    score_info_id: int | None = None
    reverses_id: int | None = None
    meta: EntryMeta = EntryMeta()
    # Leaderboards: when the points were earned, the occurred_at of the completion whose award
    # this is (for a reversal, of the award it undoes). Required for awards and reversals that
    # name a completion or an award; without either, the entry's own created_at is used. A
    # credit's lot is dated by it too (a backfilled award expires as its completion's would).
    earned_at: datetime | None = None
    # The account's type; None: the type of the account the entry is posted with.
    point_type_id: int | None = None


def _contribution(account: Account, entry: EntrySpec, created_at: datetime) -> Contribution | None:
    """What `entry` adds to its user's leaderboard totals, or None for entries that do not count."""
    if entry.kind not in COUNTED_KINDS:
        return None
    if entry.earned_at is None and (entry.completion_id or entry.reverses_id):
        raise ValueError("an award or reversal of a completion needs earned_at (the completion's occurred_at)")
    return Contribution(
        account.user_id, account.point_type_id, entry.rule_id, entry.earned_at or created_at, entry.amount, created_at
    )


def _numbered(account: Account, entries: Sequence[EntrySpec], now) -> Iterator[tuple[EntrySpec, int, int, str]]:
    """(entry, seq, balance before, serial number) for each entry appended to `account` in order.

    Checks each entry; raises ValueError on a zero amount and InsufficientBalanceError when a
    debit other than a reversal would take the balance below zero. The caller moves the account.
    """
    balance, seq = account.balance, account.last_seq
    stamp = serial_stamp(now)  # the site's date and time, like every date an operator sees
    for entry in entries:
        if entry.amount == 0:
            raise ValueError("a ledger entry moves a non-zero amount")
        if entry.amount < 0 and entry.kind in _BOUNDED_DEBITS and balance + entry.amount < 0:
            raise InsufficientBalanceError(f"balance {balance} cannot take {entry.amount}")
        seq += 1
        yield entry, seq, balance, f"{stamp}-{account.pk}-{seq}"
        balance += entry.amount


def _by_account(postings: Sequence[tuple[Account, Sequence[EntrySpec]]]) -> list[tuple[Account, list[EntrySpec]]]:
    """Each entry with the account of its type: the given one, or the same user's account of `point_type_id`."""
    wanted = {
        (account.user_id, entry.point_type_id)
        for account, entries in postings
        for entry in entries
        if entry.point_type_id is not None and entry.point_type_id != account.point_type_id
    }
    siblings = _siblings(wanted)
    grouped: dict[int, tuple[Account, list[EntrySpec]]] = {}
    for account, entries in postings:
        for entry in entries:
            target = account
            if entry.point_type_id is not None and entry.point_type_id != account.point_type_id:
                target = siblings[(account.user_id, entry.point_type_id)]
            grouped.setdefault(target.pk, (target, []))[1].append(entry)
    return list(grouped.values())


def ledger_post_entries(*, account: Account, entries: list[EntrySpec]) -> list[ScoreRecord]:
    """Append `entries` to `account` (or the same user's account of each entry's type) in order; return the new rows.

    `account` must be locked in the current transaction (`account_lock`). The same checks, rows
    and lots as `ledger_post_batch`, read back as model instances. A repeated idempotency key
    raises IntegrityError from the database, which aborts the caller's transaction: nothing is
    half-posted. Raises InsufficientBalanceError when a bounded debit would go below zero.
    """
    if not ledger_post_batch(postings=[(account, entries)]):
        return []
    by_key = {
        row.idempotency_key: row for row in ScoreRecord.objects.filter(idempotency_key__in=[e.idempotency_key for e in entries])
    }
    rows = [by_key[entry.idempotency_key] for entry in entries]
    fresh = Account.objects.get(pk=account.pk)
    account.balance, account.last_seq, account.earned_total = fresh.balance, fresh.last_seq, fresh.earned_total
    return rows


# The columns a batch writes for each new entry (the benches build their SQL from the same list).
ENTRY_COLUMNS = (
    "account_id",
    "user_id",
    "point_type_id",
    "serial_number",
    "seq",
    "trade_amount",
    "amount_before_trade",
    "amount_after_trade",
    "business_type",
    "kind",
    "score_info_id",
    "rule_id",
    "completion_id",
    "reverses_id",
    "location",
    "country",
    "lang_type",
    "idempotency_key",
    "created_at",
)


def ledger_post_batch(*, postings: Sequence[tuple[Account, Sequence[EntrySpec]]]) -> int:
    """Append entries to several accounts at once: one INSERT for every entry, one UPDATE for every account.

    Each account must be its user's, locked in the current transaction (`account_lock`,
    `accounts_lock`), and each user appear once. Entries naming another point type go to the
    same user's account of that type. Every credit becomes a lot and every debit takes from lots
    (apps.ledger.services.lots), and awards and reversals move the leaderboard totals, one
    statement per table for the whole batch; what the entries mean to their users is announced
    (apps.ledger.services.announcements) in the same transaction. Returns the number of entries written.
    """
    now = timezone.now()
    rows, moved, contributions, booked, earnings = [], [], [], [], []
    for account, entries in _by_account(postings):
        last = None
        earned = account.earned_total
        for entry, seq, before, serial in _numbered(account, entries, now):
            meta = entry.meta
            if contribution := _contribution(account, entry, now):
                contributions.append(contribution)
            if entry.kind in _EARNING or (entry.kind == "adjustment" and entry.amount > 0):
                earned += entry.amount
            booked.append((account, entry, before))
            rows.append(
                (
                    account.pk,
                    account.user_id,
                    account.point_type_id,
                    serial,
                    seq,
                    entry.amount,
                    before,
                    before + entry.amount,
                    entry.business_type[:255],
                    entry.kind,
                    entry.score_info_id,
                    entry.rule_id,
                    entry.completion_id,
                    entry.reverses_id,
                    meta.location,
                    meta.country,
                    meta.lang_type,
                    entry.idempotency_key,
                    now,
                )
            )
            last = (seq, before + entry.amount)
        if last is not None:
            account.last_seq, account.balance, account.last_activity_at, account.updated_at = *last, now, now
            if earned != account.earned_total:
                earnings.append(
                    Earned(account.pk, account.user_id, account.point_type_id, account.earned_total, earned, account.last_seq)
                )
            account.earned_total = earned
            moved.append((account.pk, account.balance, account.last_seq, earned, now, now))
    ids = rows_insert(ScoreRecord, ENTRY_COLUMNS, rows, returning=("id",))
    rows_update(Account, ("balance", "last_seq", "earned_total", "last_activity_at", "updated_at"), moved)
    lots_book(
        postings=[(account, entry, before, entry_id) for (account, entry, before), (entry_id,) in zip(booked, ids, strict=True)],
        now=now,
    )
    leaderboard_totals_add(contributions=contributions)
    entries_announce(
        posted=[
            Posted(
                entry_id,
                account.user_id,
                account.point_type_id,
                entry.kind,
                entry.amount,
                before + entry.amount,
                entry.idempotency_key,
                entry.business_type,
                entry.completion_id,
                entry.earned_at,
            )
            for (account, entry, before), (entry_id,) in zip(booked, ids, strict=True)
        ],
        earned=earnings,
        now=now,
    )
    return len(rows)


def ledger_post_entry(*, account: Account, **entry) -> ScoreRecord | None:
    """Post one entry; return it, or None, changing nothing, if its idempotency key was used before.

    Takes the same fields as EntrySpec. The savepoint lets the caller's transaction go on after a
    repeated key; `ledger_post_entries` is the faster path for callers that know the keys are new.
    """
    try:
        with transaction.atomic():
            return ledger_post_entries(account=account, entries=[EntrySpec(**entry)])[0]
    except IntegrityError:
        if ScoreRecord.objects.filter(idempotency_key=entry["idempotency_key"]).exists():
            return None
        raise
