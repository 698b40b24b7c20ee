"""Template helpers of the demo site.

`{{ rule.score_desc|in_language }}`: a rule's description in the reader's language, where the
catalogue has it. Descriptions are the operator's data, written once; the demo's own
(apps/community/demo_texts.py) are in the catalogue, so they read in English or Chinese as the page
does. Any other text shows as written.

`{% user_levels user as levels %}`: the (point type, level) pairs the user has reached, for the
header beside their name (SPEC §11).

`{% unread_notifications user as unread %}`: the user's unread notifications, for the header's
count (one COUNT on a partial index; static/js/notifications.js keeps it fresh on an open page).
"""

from django import template
from django.utils.translation import gettext

from apps.ledger.selectors.levels import user_levels as levels_of
from apps.notifications.selectors import unread_count

register = template.Library()


@register.filter
def in_language(text: str) -> str:
    return gettext(text) if text else ""


@register.simple_tag
def user_levels(user) -> list:
    if not getattr(user, "is_authenticated", False):
        return []
    return levels_of(user_id=user.pk)


@register.simple_tag
def unread_notifications(user) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    return unread_count(user_id=user.pk)
