"""`{{ rule.score_desc|in_language }}`: a rule's description in the reader's language, where the catalogue has it.

Descriptions are the operator's data, written once; the demo's own (apps/community/demo_texts.py)
are in the catalogue, so they read in English or Chinese as the page does. Any other text shows as written.
"""

from django import template
from django.utils.translation import gettext

register = template.Library()


@register.filter
def in_language(text: str) -> str:
    return gettext(text) if text else ""
