"""`GET /api/me/badges`: the badges the signed-in user holds (SPEC §12)."""

from datetime import datetime

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Router, Schema
from ninja.security import django_auth

from apps.rules.selectors.badges import badges_of
from config.api_errors import ErrorOut

router = Router(tags=["me"], auth=django_auth)


class BadgeOut(Schema):
    code: str
    name: str  # in the request's language where the catalogue has it (the demo's badges)
    description: str
    image: str | None  # the image's absolute URL; null if the badge has none
    earned_at: datetime  # when the completion that earned it happened (the earliest one still standing)


class BadgesOut(Schema):
    badges: list[BadgeOut]  # first earned first


@router.get("", response={200: BadgesOut, 401: ErrorOut}, summary="The badges the signed-in user holds")
def badges(request: HttpRequest):
    """Each badge the user holds now: one taken back with the award that granted it is not listed."""
    return {
        "badges": [
            {
                "code": badge.code,
                "name": _(badge.name),
                "description": _(badge.description) if badge.description else "",
                "image": request.build_absolute_uri(badge.image.url) if badge.image else None,
                "earned_at": badge.earned_at,
            }
            for badge in badges_of(user_id=request.user.pk)
        ]
    }
