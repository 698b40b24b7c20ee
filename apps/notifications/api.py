"""The signed-in user's notifications: `GET /api/me/notifications` and `POST /api/me/notifications/read`."""

from datetime import datetime

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status
from ninja.security import django_auth

from apps.notifications.selectors import notifications_page, unread_count
from apps.notifications.services.reading import notifications_mark_read
from apps.notifications.texts import NotificationText, notification_texts
from config.api_errors import ErrorOut

# Session sign-in, as on the site; the POST needs the site's CSRF token like a form (SPEC §11):
# ninja's session auth checks it (the `csrftoken` cookie's value in the X-CSRFToken header).
router = Router(tags=["me"], auth=django_auth)

MARK_READ_IDS_MAX = 1000  # more in one request is a client's mistake; "all" marks any number


class NotificationOut(Schema):
    id: int
    kind: str  # the event type, e.g. points.awarded, badge.earned (docs/api.md lists them)
    text: str  # one sentence in the request's language
    url: str | None  # the site's page to see it on
    data: dict  # what the text is made of: amounts, codes, ids (shapes in docs/api.md)
    created_at: datetime
    read: bool


class NotificationsOut(Schema):
    unread: int  # all the user's unread notifications, not just this page's
    notifications: list[NotificationOut]
    next_before: int | None  # pass as ?before= for the next, older page; null on the last page


class MarkReadIn(Schema):
    ids: list[int] | None = Field(None, max_length=MARK_READ_IDS_MAX, description="The notifications to mark read.")
    all: bool = Field(False, description="true: mark every notification of the user read.")


class MarkReadOut(Schema):
    marked: int  # how many were unread and are read now
    unread: int  # the user's unread count after it


def _notification(item: NotificationText) -> dict:
    notification = item.notification
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "text": item.text,
        "url": item.url,
        "data": notification.data,
        "created_at": notification.created_at,
        "read": notification.read_at is not None,
    }


@router.get(
    "",
    response={200: NotificationsOut, 401: ErrorOut},
    summary="The signed-in user's notifications, newest first",
    url_name="me_notifications",
)
def notifications(
    request: HttpRequest,
    unread: bool = Query(False, description="1: only the unread ones."),
    before: int | None = Query(None, ge=1, le=2**63 - 1),
    limit: int = Query(20, ge=0),
):
    """A page of notifications with id below `before` (the newest, without it), and the unread count.

    `limit` is capped at JIFEN_API_LEDGER_PAGE_MAX; `limit=0` answers the unread count alone (what
    the site's header polls). Reading them here does not mark them read.
    """
    items, next_before = [], None
    if limit:
        page = notifications_page(
            user_id=request.user.pk, before=before, limit=min(limit, settings.JIFEN_API_LEDGER_PAGE_MAX), unread=unread
        )
        items, next_before = notification_texts(page.notifications), page.next_before
    return {
        "unread": unread_count(user_id=request.user.pk),
        "notifications": [_notification(item) for item in items],
        "next_before": next_before,
    }


@router.post("/read", response={200: MarkReadOut, 401: ErrorOut, 403: ErrorOut, 422: ErrorOut}, summary="Mark notifications read")
def mark_read(request: HttpRequest, body: MarkReadIn):
    """`{"ids": [...]}` marks those (other users' ids are ignored), `{"all": true}` every one; answers the new unread count."""
    if not body.all and body.ids is None:
        message = _('Send {"ids": [...]} or {"all": true}.')
        return Status(422, {"error": "bad_parameters", "message": message})
    marked = notifications_mark_read(user=request.user, ids=body.ids, everything=body.all)
    return {"marked": marked, "unread": unread_count(user_id=request.user.pk)}
