"""The shop's endpoints for the signed-in user: `POST /api/me/redemptions` (redeem) and `GET /api/me/redemptions`."""

from datetime import datetime

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.security import django_auth

from apps.rewards.eligibility import RedemptionRefused
from apps.rewards.models import Redemption
from apps.rewards.selectors import redemptions_of
from apps.rewards.services.redemptions import KEY_MAX_LENGTH, redemption_create
from config.api_errors import ErrorOut

# Session sign-in, as on the site; a POST needs the site's CSRF token like a form (SPEC §11):
# ninja's session auth checks it (the `csrftoken` cookie's value in the X-CSRFToken header).
router = Router(tags=["me"], auth=django_auth)


class RedeemIn(Schema):
    item: str = Field(..., min_length=1, max_length=64, description="The item's code.")
    key: str = Field(
        ...,
        min_length=1,
        max_length=KEY_MAX_LENGTH,
        description="A new key of the client's for each redemption (a UUID): the same key again returns the first answer.",
    )


class RedemptionOut(Schema):
    id: int
    item: str  # the item's code
    item_name: str
    point_type: str  # the point type's code
    cost: int
    status: str  # pending, fulfilled or cancelled
    key: str
    created_at: datetime
    decided_at: datetime | None  # when an operator fulfilled or cancelled it
    note: str  # the operator's note on cancelling


class RedeemOut(Schema):
    redemption: RedemptionOut
    balance: int  # the user's balance of the item's point type, after it
    created: bool  # false: this key was used before; this is the first answer, and nothing was posted now


class RedemptionsOut(Schema):
    redemptions: list[RedemptionOut]
    next_before: int | None  # pass as ?before= for the next, older page; null on the last page


def _redemption(redemption: Redemption) -> dict:
    return {
        "id": redemption.pk,
        "item": redemption.item.code,
        "item_name": redemption.item.name,
        "point_type": redemption.point_type.code,
        "cost": redemption.cost,
        "status": redemption.status,
        "key": redemption.client_key,
        "created_at": redemption.created_at,
        "decided_at": redemption.decided_at,
        "note": redemption.note,
    }


@router.post(
    "",
    response={201: RedeemOut, 200: RedeemOut, 401: ErrorOut, 403: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Redeem an item of the shop",
)
def redeem(request: HttpRequest, body: RedeemIn):
    """201 with the redemption and the new balance; the same key again: 200 with the first redemption, nothing posted.

    Refusals: 409 `insufficient_points`, `out_of_stock`, `limit_reached`; 422 `level_required`,
    `not_available`, `key_reused`, `bad_key`, `bad_parameters`. Nothing is spent when refused.
    """
    try:
        done = redemption_create(user=request.user, item_code=body.item, client_key=body.key)
    except RedemptionRefused as refused:
        return Status(refused.http_status, {"error": refused.code, "message": refused.message})
    answer = {"redemption": _redemption(done.redemption), "balance": done.balance, "created": done.created}
    return Status(201 if done.created else 200, answer)


@router.get("", response={200: RedemptionsOut, 401: ErrorOut}, summary="The signed-in user's redemptions, newest first")
def redemptions(request: HttpRequest, before: int | None = Query(None, ge=1, le=2**63 - 1), limit: int = Query(20, ge=1)):
    """A page of redemptions with id below `before` (the newest, without it); `limit` is capped at JIFEN_API_LEDGER_PAGE_MAX."""
    page = redemptions_of(user_id=request.user.pk, before=before, limit=min(limit, settings.JIFEN_API_LEDGER_PAGE_MAX))
    return {"redemptions": [_redemption(r) for r in page.redemptions], "next_before": page.next_before}
