"""`GET /api/me` and `GET /api/me/ledger`: the signed-in user's balance and ledger, for the site's own pages and apps."""

from datetime import datetime

from django.conf import settings
from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.security import django_auth

from apps.ledger.models import ScoreRecord
from apps.ledger.selectors import account_of, ledger_page
from config.api_errors import ErrorOut

router = Router(tags=["me"], auth=django_auth)


class MeOut(Schema):
    username: str
    balance: int
    last_activity_at: datetime | None


class LedgerEntryOut(Schema):
    seq: int
    serial_number: str
    amount: int
    balance_before: int
    balance_after: int
    kind: str
    rule: str | None  # the rule's score_type, for awards and their reversals
    business_type: str
    created_at: datetime


class LedgerPageOut(Schema):
    entries: list[LedgerEntryOut]
    next_before: int | None  # pass as ?before= for the next, older page; null on the last page


def _entry(entry: ScoreRecord) -> dict:
    return {
        "seq": entry.seq,
        "serial_number": entry.serial_number,
        "amount": entry.trade_amount,
        "balance_before": entry.amount_before_trade,
        "balance_after": entry.amount_after_trade,
        "kind": entry.kind,
        "rule": entry.rule.score_type if entry.rule_id else None,
        "business_type": entry.business_type,
        "created_at": entry.created_at,
    }


@router.get("", response={200: MeOut, 401: ErrorOut}, summary="The signed-in user's balance")
def me(request: HttpRequest):
    account = account_of(user_id=request.user.pk)
    return {
        "username": request.user.get_username(),
        "balance": account.balance if account else 0,
        "last_activity_at": account.last_activity_at if account else None,
    }


@router.get("/ledger", response={200: LedgerPageOut, 401: ErrorOut}, summary="The signed-in user's ledger, newest first")
def ledger(request: HttpRequest, before: int | None = Query(None, ge=1, le=2**63 - 1), limit: int = Query(20, ge=1)):
    """A page of entries with seq below `before` (the newest, without it); `limit` is capped at JIFEN_API_LEDGER_PAGE_MAX."""
    page = ledger_page(user_id=request.user.pk, before_seq=before, limit=min(limit, settings.JIFEN_API_LEDGER_PAGE_MAX))
    return {"entries": [_entry(entry) for entry in page.entries], "next_before": page.next_before}
