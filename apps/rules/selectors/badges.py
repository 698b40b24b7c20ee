"""The badges a user holds (SPEC §12): shown on the site, the admin's user page and `GET /api/me/badges`."""

from django.db.models import Min, Q

from apps.rules.models import Badge


def badges_of(*, user_id: int) -> list[Badge]:
    """The badges the user holds, first earned first, each with `earned_at`: one query.

    A user holds a badge while one of its awards is live (not taken back); `earned_at` is when
    the earliest live award's completion happened, so a badge taken back and earned again shows
    the new date.
    """
    live = Q(awards__user_id=user_id, awards__revoked_at__isnull=True)
    return list(Badge.objects.filter(live).annotate(earned_at=Min("awards__earned_at")).order_by("earned_at", "id"))
