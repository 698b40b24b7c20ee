"""Template helpers of the demo site.

`{{ rule.score_desc|in_language }}`: a rule's description in the reader's language, where the
catalogue has it. Descriptions are the operator's data, written once; the demo's own
(apps/community/demo_texts.py) are in the catalogue, so they read in English or Chinese as the page
does. Any other text shows as written.

`{% user_levels user as levels %}`: the (point type, level) pairs the user has reached, for the
header beside their name (SPEC §11).
"""

from django import template
from django.utils.translation import gettext

from apps.ledger.selectors.levels import user_levels as levels_of

register = template.Library()


@register.filter
def in_language(text: str) -> str:
    return gettext(text) if text else ""


@register.simple_tag
def user_levels(user) -> list:
    if not getattr(user, "is_authenticated", False):
        return []
    return levels_of(user_id=user.pk)
