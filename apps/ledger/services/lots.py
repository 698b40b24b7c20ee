"""Lots: every credit is a lot with its expiry; every debit takes the oldest live lots first (SPEC §11).

`lots_book` runs inside the ledger's posting (`ledger_post_batch`), in its transaction and under
its users' account locks, for every entry posted:

- a credit becomes a lot of its amount, dated by the entry's `earned_at` (a backfilled award by
  its completion) and expiring as its type's policy says. While the balance is below zero a
  credit first pays the debt: its lot keeps only what lifts the balance above zero;
- a refund gives back the lots its debit (`reverses`) took, with their own expiry, as far as the
  balance above zero allows; a lot that expired meanwhile goes at the next expiry run;
- a debit takes from the account's live lots, soonest to expire first (never-expiring last), and a
  reversal takes its own award's lot first. What each debit took is recorded (`LotTake`), so that
  a refund gives it back; except an expiry's, which nothing gives back (apps.ledger.services.expiry
  writes a million of them in a year-end run, and P9 counts every row).

So, whenever an account's balance is not below zero, its lots' remainders sum to it, and below
zero they are all 0 (invariant 6): a debit that goes below zero (only a reversal may) empties
every lot, and the next credits refill them only above zero.
"""

import calendar
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from django.db import connection

from apps.core.multirow import fetch, int_list, read_time, rows_insert, rows_update
from apps.core.periods import site_timezone
from apps.ledger.models import Account, LotTake, PointLot, PointType, ScoreRecord

_LIVE_ORDER = "(expires_at IS NULL), expires_at, earned_at, id"
# In-batch lots have no id until inserted: they sort after every stored lot of their account.
_NEW = 1 << 62


def add_months(at: datetime, months: int) -> datetime:
    """`at` plus `months` calendar months in the site's time zone; the 31st becomes the month's last day."""
    tz = site_timezone()
    local = at.astimezone(tz)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day, tzinfo=None).replace(tzinfo=tz)


def lot_expiry(policy: tuple[str, int | None], earned_at: datetime) -> datetime | None:
    """When points earned at `earned_at` expire under the policy (expiry, months), or None for never."""
    expiry, months = policy
    if expiry == PointType.Expiry.ROLLING:
        return add_months(earned_at, months or 0)
    if expiry == PointType.Expiry.YEAR_END:
        # The annual 清零: the end of the year after earning, i.e. the local midnight that starts
        # the second new year.
        local = earned_at.astimezone(site_timezone())
        return datetime(local.year + 2, 1, 1, tzinfo=site_timezone())
    return None


def policies() -> dict[int, tuple[str, int | None]]:
    """{point_type_id: (expiry, months)} of every point type (a handful of rows)."""
    sql = f"SELECT id, expiry, expiry_months FROM {PointType._meta.db_table}"  # noqa: S608 - the model's own table
    return {pk: (expiry, months) for pk, expiry, months in fetch(sql)}


class _Lot:
    __slots__ = ("id", "entry_id", "earned_at", "expires_at", "amount", "remaining", "stored")

    def __init__(self, id, entry_id, earned_at, expires_at, amount, remaining, stored):
        self.id, self.entry_id, self.earned_at, self.expires_at = id, entry_id, earned_at, expires_at
        self.amount, self.remaining, self.stored = amount, remaining, stored

    def order(self) -> tuple:
        return (self.expires_at is None, self.expires_at or self.earned_at, self.earned_at, self.id)


def _stored_lots(account_ids: set[int], entry_ids: set[int]) -> dict[int, dict[int, _Lot]]:
    """{account_id: {lot_id: lot}}: the live lots of the accounts (those of `entry_ids` among them).

    A reversal takes its own award's lot first only while it has points left, so only live lots are
    read, on the partial indexes `pointlot_live` and `pointlot_entry`.
    """
    if not account_ids:
        return {}
    where = f"remaining > 0 AND account_id IN ({int_list(account_ids)})"
    if entry_ids:
        where = f"remaining > 0 AND (account_id IN ({int_list(account_ids)}) OR entry_id IN ({int_list(entry_ids)}))"
    lots: dict[int, dict[int, _Lot]] = defaultdict(dict)
    for account_id, lot in _lots_where(where):
        lots[account_id][lot.id] = lot
    return lots


def _lots_where(where: str) -> list[tuple[int, _Lot]]:
    """(account id, lot) for each stored lot matching the SQL condition `where` (integers only)."""
    rows = fetch(
        f"SELECT id, account_id, entry_id, earned_at, expires_at, amount, remaining FROM {PointLot._meta.db_table} WHERE {where}"  # noqa: S608
    )
    return [
        (account_id, _Lot(pk, entry_id, read_time(earned), read_time(expires), amount, remaining, True))
        for pk, account_id, entry_id, earned, expires, amount, remaining in rows
    ]


def _takes_of(entry_ids: set[int]) -> dict[int, list[tuple[int, int]]]:
    """{debit entry id: [(lot id, amount taken), …]} in the order taken."""
    if not entry_ids:
        return {}
    takes: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for entry_id, lot_id, amount in fetch(
        f"SELECT entry_id, lot_id, amount FROM {LotTake._meta.db_table} WHERE entry_id IN ({int_list(entry_ids)}) ORDER BY id"  # noqa: S608
    ):
        takes[entry_id].append((lot_id, amount))
    return takes


def _lots_by_id(lot_ids: set[int]) -> dict[int, _Lot]:
    if not lot_ids:
        return {}
    return {lot.id: lot for _, lot in _lots_where(f"id IN ({int_list(lot_ids)})")}


def lots_book(*, postings: Sequence[tuple[Account, object, int, int]], now: datetime) -> None:
    """Keep the lots of the entries just posted: (account, EntrySpec, balance before, entry id) in posting order.

    An award-only batch (the worker's usual one) reads nothing and writes one multi-row INSERT;
    debits and refunds read their accounts' lots first and write the changed remainders back.
    """
    if not postings:
        return
    # The accounts read by `accounts_lock` carry their type's policy; others cost one small query.
    rules = {account.point_type_id: account.policy for account, _, _, _ in postings if hasattr(account, "policy")}
    if any(account.point_type_id not in rules for account, _, _, _ in postings):
        rules = policies()
    debiting = {account.pk for account, entry, _, _ in postings if entry.amount < 0}
    refunded = {entry.reverses_id for _, entry, _, _ in postings if entry.amount > 0 and entry.reverses_id}
    own = {entry.reverses_id for _, entry, _, _ in postings if entry.amount < 0 and entry.reverses_id}
    lots = _stored_lots(debiting, own)
    takes_before = _takes_of(refunded)
    restored_lots = _lots_by_id({lot for taken in takes_before.values() for lot, _ in taken})
    new: list[_Lot] = []
    new_account: dict[int, int] = {}
    takes: list[tuple[int, int, int]] = []  # (entry id, lot id, amount)
    changed: dict[int, _Lot] = {}
    for account, entry, before, entry_id in postings:
        after = before + entry.amount
        account_lots = lots.setdefault(account.pk, {})
        if entry.amount > 0:
            keep = min(entry.amount, max(0, after))
            if entry.reverses_id and entry.reverses_id in takes_before:
                for lot_id, taken in takes_before[entry.reverses_id]:
                    lot = account_lots.get(lot_id) or restored_lots.get(lot_id)
                    if lot is None or keep <= 0:
                        continue
                    back = min(taken, keep, lot.amount - lot.remaining)
                    if back > 0:
                        lot.remaining += back
                        keep -= back
                        account_lots[lot.id] = lot
                        if lot.stored:
                            changed[lot.id] = lot
            if entry.reverses_id and keep <= 0:
                continue
            earned = entry.earned_at or now
            lot = _Lot(
                _NEW + len(new), entry_id, earned, lot_expiry(rules[account.point_type_id], earned), entry.amount, keep, False
            )
            if entry.reverses_id:  # a refund's excess over what it can give back: a lot of that size
                lot.amount = keep
            new.append(lot)
            new_account[lot.id] = account.pk
            account_lots[lot.id] = lot
            continue
        need = -entry.amount
        live = sorted((lot for lot in account_lots.values() if lot.remaining > 0), key=_Lot.order)
        if entry.reverses_id:
            mine = [lot for lot in account_lots.values() if lot.entry_id == entry.reverses_id and lot.remaining > 0]
            live = mine + [lot for lot in live if lot not in mine]
        for lot in live:
            if need <= 0:
                break
            take = min(need, lot.remaining)
            lot.remaining -= take
            need -= take
            if entry.kind != ScoreRecord.Kind.EXPIRY:  # an expiry is never given back: nothing reads its takes
                takes.append((entry_id, lot.id, take))
            if lot.stored:
                changed[lot.id] = lot
    ids = rows_insert(
        PointLot,
        ("account_id", "entry_id", "earned_at", "expires_at", "amount", "remaining"),
        [(new_account[lot.id], lot.entry_id, lot.earned_at, lot.expires_at, lot.amount, lot.remaining) for lot in new],
        returning=("id",) if takes else (),
    )
    real = {lot.id: pk for lot, (pk,) in zip(new, ids, strict=True)} if takes else {}
    rows_update(PointLot, ("remaining",), [(lot.id, lot.remaining) for lot in sorted(changed.values(), key=lambda lot: lot.id)])
    rows_insert(LotTake, ("entry_id", "lot_id", "amount"), [(e, real.get(lot, lot), a) for e, lot, a in takes])


def lots_check(account_ids: Sequence[int] | None = None) -> list[tuple[int, int, int]]:
    """Invariant 6: [(account id, balance, sum of remainders)] for accounts whose lots disagree with the balance.

    A balance not below zero must equal its lots' remainders; a balance below zero must have none left.
    """
    accounts, lots = Account._meta.db_table, PointLot._meta.db_table
    where = f"WHERE a.id IN ({int_list(account_ids)})" if account_ids else ""
    sql = (
        f"SELECT a.id, a.balance, COALESCE(l.total, 0) FROM {accounts} a "  # noqa: S608 - table names and integers only
        f"LEFT JOIN (SELECT account_id, SUM(remaining) AS total FROM {lots} GROUP BY account_id) l ON l.account_id = a.id {where}"
    )
    bad = []
    for pk, balance, total in fetch(sql):
        if (balance >= 0 and total != balance) or (balance < 0 and total != 0):
            bad.append((pk, balance, int(total)))
    return bad


def accounts_open(*, first_id: int, last_id: int) -> None:
    """Give accounts written straight into the tables (the demo seed) what posting keeps: earned totals and lots.

    For the accounts with ids in [first_id, last_id]: `earned_total` from their entries, and one
    lot holding each positive balance, dated by the account's last activity and expiring as its
    type's policy says.
    """
    accounts, entries = Account._meta.db_table, ScoreRecord._meta.db_table
    span = f"id BETWEEN {int(first_id)} AND {int(last_id)}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {accounts} SET earned_total = COALESCE((SELECT SUM(s.trade_amount) FROM {entries} s "  # noqa: S608 - integers only
            f"WHERE s.account_id = {accounts}.id AND (s.kind IN ('award', 'reversal') "
            f"OR (s.kind = 'adjustment' AND s.trade_amount > 0))), 0) WHERE {span}"
        )
    rules = policies()
    rows = []
    for pk, point_type_id, balance, at in fetch(
        f"SELECT id, point_type_id, balance, COALESCE(last_activity_at, created_at) FROM {accounts} WHERE {span} AND balance > 0"  # noqa: S608
    ):
        at = read_time(at)
        rows.append((pk, None, at, lot_expiry(rules[point_type_id], at), balance, balance))
    rows_insert(PointLot, ("account_id", "entry_id", "earned_at", "expires_at", "amount", "remaining"), rows)
