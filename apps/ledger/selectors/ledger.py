"""Reads of balances and ledger history."""

from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Sum, Value, Window
from django.db.models.functions import Coalesce, Lag

from apps.ledger.models import Account, Adjustment, ScoreRecord
from apps.ledger.point_types import default_point_type_id
from apps.ledger.selectors.levels import Standing, standings_of
from apps.ledger.services.lots import lots_check
from apps.rules.models import ScoreRule
from apps.rules.selectors.rules import RuleProgress, current_progress_for
from apps.tasks.models import UserTaskRecord


def balance_of(*, user_id: int, point_type_id: int | None = None) -> int:
    """The user's balance of one point type (None: the default type)."""
    mine = Account.objects.filter(user_id=user_id, point_type_id=point_type_id or default_point_type_id())
    return mine.values_list("balance", flat=True).first() or 0


def account_of(*, user_id: int, point_type_id: int | None = None) -> Account | None:
    """The user's account of one point type (None: the default type, the main account), or None."""
    return Account.objects.filter(user_id=user_id, point_type_id=point_type_id or default_point_type_id()).first()


def entry_totals(*, user_id: int, point_type_id: int | None = None) -> dict[str, int]:
    """{kind: net amount} of the user's entries of one point type (None: the default type): one query, by the user's index."""
    entries = ScoreRecord.objects.filter(user_id=user_id, point_type_id=point_type_id or default_point_type_id()).order_by()
    return dict(entries.values("kind").annotate(total=Sum("trade_amount")).values_list("kind", "total"))


def recent_entries(*, user_id: int, limit: int = 20) -> QuerySet[ScoreRecord]:
    """The user's latest entries of every point type, newest first."""
    return ScoreRecord.objects.filter(user_id=user_id).select_related("rule", "point_type").order_by("-id")[:limit]


@dataclass(frozen=True)
class LedgerProblem:
    invariant: int  # the SPEC §5 invariant that fails
    account_id: int | None
    detail: str

    def __str__(self) -> str:
        where = f"account {self.account_id}: " if self.account_id is not None else ""
        return f"invariant {self.invariant}: {where}{self.detail}"


def _chain_problems() -> Iterator[LedgerProblem]:
    """Invariant 1, entry by entry: seq gapless from 1, before = previous after, after = before + amount."""
    window = {"partition_by": [F("account_id")], "order_by": F("seq").asc()}
    rows = (
        ScoreRecord.objects.annotate(
            prev_seq=Window(Lag("seq"), **window), prev_after=Window(Lag("amount_after_trade"), **window)
        )
        .filter(
            Q(prev_seq__isnull=True, seq__gt=1)
            | Q(prev_seq__isnull=True) & ~Q(amount_before_trade=0)
            | Q(prev_seq__isnull=False) & ~Q(seq=F("prev_seq") + 1)
            | Q(prev_seq__isnull=False) & ~Q(amount_before_trade=F("prev_after"))
            | ~Q(amount_after_trade=F("amount_before_trade") + F("trade_amount"))
        )
        .order_by("account_id", "seq")
        .values(
            "account_id",
            "serial_number",
            "seq",
            "prev_seq",
            "amount_before_trade",
            "prev_after",
            "trade_amount",
            "amount_after_trade",
        )
    )
    for row in rows:
        yield LedgerProblem(
            1,
            row["account_id"],
            f"entry {row['serial_number']} (seq {row['seq']}, previous seq {row['prev_seq']}): "
            f"before {row['amount_before_trade']}, previous after {row['prev_after']}, "
            f"amount {row['trade_amount']}, after {row['amount_after_trade']}",
        )


def _balance_problems() -> Iterator[LedgerProblem]:
    """Invariant 1, per account: balance = sum of amounts, last_seq = number of entries."""
    accounts = Account.objects.annotate(
        total=Coalesce(Sum("entries__trade_amount"), Value(0)),
        entries_count=Count("entries"),
        top_seq=Coalesce(Max("entries__seq"), Value(0)),
    ).filter(~Q(balance=F("total")) | ~Q(last_seq=F("entries_count")) | ~Q(last_seq=F("top_seq")))
    for account in accounts:
        yield LedgerProblem(
            1,
            account.pk,
            f"balance {account.balance} but entries sum to {account.total}; last_seq {account.last_seq}, "
            f"{account.entries_count} entries, highest seq {account.top_seq}",
        )


def _type_problems() -> Iterator[LedgerProblem]:
    """Invariant 1 per type: an entry's point type is its account's (the entry keeps a copy for lists)."""
    wrong = ScoreRecord.objects.exclude(point_type_id=F("account__point_type_id"))
    for row in wrong.values("account_id", "serial_number", "point_type_id", "account__point_type_id")[:100]:
        yield LedgerProblem(
            1,
            row["account_id"],
            f"entry {row['serial_number']} says point type {row['point_type_id']}, "
            f"its account is of {row['account__point_type_id']}",
        )


def _append_only_problems() -> Iterator[LedgerProblem]:
    """Invariant 2: on PostgreSQL the trigger that refuses UPDATE and DELETE is in place."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'ledger_scorerecord'::regclass "
            "AND tgname = 'ledger_scorerecord_append_only' AND tgenabled <> 'D'"
        )
        if cursor.fetchone()[0] != 1:
            yield LedgerProblem(2, None, "the append-only trigger on ledger_scorerecord is missing or disabled")


def _double_award_problems() -> Iterator[LedgerProblem]:
    """Invariant 3: at most one live award (one no reversal compensates) per (completion, rule), one reversal per award.

    A re-score (SPEC §6) may take an award back and grant it again later: that is a second award
    entry, with the first one's reversal beside it.
    """
    compensated = ScoreRecord.objects.filter(reverses=OuterRef("pk"))
    doubled = (
        ScoreRecord.objects.filter(kind=ScoreRecord.Kind.AWARD, completion__isnull=False)
        .exclude(Exists(compensated))
        .values("completion_id", "rule_id")
        .annotate(n=Count("id"), account_id=Min("account_id"))
        .filter(n__gt=1)
    )
    for row in doubled:
        yield LedgerProblem(
            3, row["account_id"], f"completion {row['completion_id']} awarded {row['n']} times by rule {row['rule_id']}"
        )
    reversed_twice = (
        ScoreRecord.objects.filter(reverses__isnull=False)
        .values("reverses_id")
        .annotate(n=Count("id"), account_id=Min("account_id"))
    )
    for row in reversed_twice.filter(n__gt=1):
        yield LedgerProblem(3, row["account_id"], f"entry {row['reverses_id']} reversed {row['n']} times")


def _cap_problems() -> Iterator[LedgerProblem]:
    """Invariant 4: no capped rule has more distinct recipients than number_limit_all."""
    from apps.rules.models import RuleRecipient

    capped = ScoreRule.all_objects.filter(number_limit_all__isnull=False)
    for rule in capped:
        users = ScoreRecord.objects.filter(rule=rule, kind=ScoreRecord.Kind.AWARD).values("user_id").distinct().count()
        places = RuleRecipient.objects.filter(rule=rule).count()
        if users > rule.number_limit_all or places > rule.number_limit_all:
            yield LedgerProblem(
                4,
                None,
                f"rule {rule.score_type} has {users} awarded users and {places} places for a cap of {rule.number_limit_all}",
            )


def _adjustment_problems() -> Iterator[LedgerProblem]:
    """Invariant 5: no adjustment, spend (a hold is one) or expiry went below zero; each posted adjustment has its entry."""
    bounded = [ScoreRecord.Kind.ADJUSTMENT, ScoreRecord.Kind.SPEND, ScoreRecord.Kind.EXPIRY]
    below = ScoreRecord.objects.filter(kind__in=bounded, trade_amount__lt=0, amount_after_trade__lt=0)
    for row in below.values("account_id", "serial_number", "kind", "amount_after_trade"):
        yield LedgerProblem(
            5,
            row["account_id"],
            f"{row['kind']} entry {row['serial_number']} left the balance at {row['amount_after_trade']}",
        )
    posted = Adjustment.Status.POSTED
    mismatched = Adjustment.objects.filter(
        Q(status=posted, entry__isnull=True)
        | ~Q(status=posted) & Q(entry__isnull=False)
        | Q(entry__isnull=False)
        & (~Q(entry__trade_amount=F("amount")) | ~Q(entry__user=F("user")) | ~Q(entry__kind=ScoreRecord.Kind.ADJUSTMENT))
    )
    for row in mismatched.values("pk", "status", "amount", "entry_id", "entry__account_id"):
        yield LedgerProblem(
            5,
            row["entry__account_id"],
            f"adjustment {row['pk']} ({row['status']}, {row['amount']:+d}) does not match its entry {row['entry_id']}",
        )


def _lot_problems() -> Iterator[LedgerProblem]:
    """Invariant 6: an account's lots hold its balance when it is not below zero, and nothing when it is."""
    for account_id, balance, total in lots_check():
        yield LedgerProblem(6, account_id, f"balance {balance} but its lots hold {total}")


def ledger_problems() -> list[LedgerProblem]:
    """Check SPEC §5 invariants 1–6 over the whole ledger; an empty list means all hold."""
    checks = (
        _chain_problems,
        _balance_problems,
        _type_problems,
        _append_only_problems,
        _double_award_problems,
        _cap_problems,
        _adjustment_problems,
        _lot_problems,
    )
    return [problem for check in checks for problem in check()]


# --- The admin's per-user page ------------------------------------------------------------------


@dataclass(frozen=True)
class UserLedger:
    """What the admin's per-user page shows: each list is the newest slice, never the whole history."""

    user: object
    account: Account | None  # the main account (the default type's)
    standings: list[Standing]  # every point type: balance, earned, level, next level
    progress: list[RuleProgress]
    entries: list[ScoreRecord]
    # Pass as `before` for the next, older slice; None at the start. With a point type, an entry's
    # seq in that type's account; with every type, an entry's id.
    older_entries_before: int | None
    completions: list[UserTaskRecord]
    more_completions: bool
    adjustments: list[Adjustment]
    more_adjustments: bool


def user_ledger(
    *,
    user_id: int,
    before: int | None = None,
    point_type_id: int | None = None,
    entries: int = 50,
    completions: int = 30,
    adjustments: int = 20,
) -> UserLedger:
    """One user's standing in every point type, progress and latest history; raises the user model's DoesNotExist.

    A constant number of queries whatever the user's history. With `point_type_id`, entries are
    that type's account's, read by the unique (account, seq) index from seq `before` down (seq has
    no gaps, so the slice's last seq tells whether older ones exist); without, every type's, newest
    first by id below `before`, by the user's index (one more row than shown). The other lists
    are read by the user's indexes, one more row than shown.
    """
    user = get_user_model().objects.get(pk=user_id)
    account = Account.objects.filter(user_id=user_id, point_type_id=default_point_type_id()).first()
    related = ("rule", "adjustment", "point_type")
    page: list[ScoreRecord] = []
    older = None
    if point_type_id is not None:
        chosen = Account.objects.filter(user_id=user_id, point_type_id=point_type_id).first()
        if chosen is not None:
            below = chosen.last_seq + 1 if before is None else before
            page = list(
                ScoreRecord.objects.filter(account=chosen, seq__lt=below).select_related(*related).order_by("-seq")[:entries]
            )
            older = page[-1].seq if page and page[-1].seq > 1 else None
    else:
        mine = ScoreRecord.objects.filter(user_id=user_id)
        if before is not None:
            mine = mine.filter(id__lt=before)
        page = list(mine.select_related(*related).order_by("-id")[: entries + 1])
        older = page[entries - 1].pk if len(page) > entries else None
        page = page[:entries]
    done = list(
        UserTaskRecord.objects.filter(user_id=user_id).select_related("task").order_by("-occurred_at", "-id")[: completions + 1]
    )
    adjusted = list(
        Adjustment.objects.filter(user_id=user_id)
        .select_related("point_type", "requested_by", "decided_by", "entry")
        .order_by("-created_at", "-id")[: adjustments + 1]
    )
    return UserLedger(
        user=user,
        account=account,
        standings=standings_of(user_id=user_id),
        progress=current_progress_for(user_id=user_id),
        entries=page,
        older_entries_before=older,
        completions=done[:completions],
        more_completions=len(done) > completions,
        adjustments=adjusted[:adjustments],
        more_adjustments=len(adjusted) > adjustments,
    )


# --- The JSON API (GET /api/me, /api/me/ledger) ---------------------------------------------------


@dataclass(frozen=True)
class LedgerPage:
    """A slice of one user's ledger, newest first."""

    account: Account | None
    entries: list[ScoreRecord]
    next_before: int | None  # pass as `before` for the next, older slice; None when there is none


def ledger_page(*, user_id: int, before: int | None = None, limit: int = 20, point_type_id: int | None = None) -> LedgerPage:
    """The user's entries, newest first, at most `limit`: of one point type, or of every type.

    With `point_type_id`: that type's account's entries with seq below `before` (all, when None),
    by keyset pagination over the unique (account, seq) index; seq has no gaps, so the slice's last
    seq tells whether older entries exist. Without: every type's entries with an id below
    `before`, by the user's index, one row more than asked telling whether older ones exist. Either
    way two queries for any page, however deep, and a page never shifts when new entries arrive.
    """
    related = ("rule", "point_type")
    if point_type_id is None:
        account = Account.objects.filter(user_id=user_id, point_type_id=default_point_type_id()).first()
        mine = ScoreRecord.objects.filter(user_id=user_id)
        if before is not None:
            mine = mine.filter(id__lt=before)
        entries = list(mine.select_related(*related).order_by("-id")[: limit + 1])
        older = entries[limit - 1].pk if len(entries) > limit else None
        return LedgerPage(account=account, entries=entries[:limit], next_before=older)
    account = Account.objects.filter(user_id=user_id, point_type_id=point_type_id).first()
    if account is None:
        return LedgerPage(account=None, entries=[], next_before=None)
    below = account.last_seq + 1 if before is None else before
    entries = list(ScoreRecord.objects.filter(account=account, seq__lt=below).select_related(*related).order_by("-seq")[:limit])
    return LedgerPage(account=account, entries=entries, next_before=entries[-1].seq if entries and entries[-1].seq > 1 else None)
