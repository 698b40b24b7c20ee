"""The demo's words (fixtures/demo.json), marked for translation so the site shows them in its language.

`make messages` collects them; `{{ …|in_language }}` (apps/community/templatetags/community.py)
looks the rules' descriptions and the badges' names up, and point types and levels translate their own names
(`str()` of apps.ledger.models.PointType and Level). Keep them equal to the fixture's texts
(tests/community/test_demo_setup.py checks).
"""

from django.utils.translation import gettext_noop

DEMO_DESCRIPTIONS = (
    gettext_noop("Daily sign-in: 1 point a day"),
    gettext_noop("Sign in 10 days in a row: 2 bonus points"),
    gettext_noop("Publish a post: 5 points each, up to 10 a day"),
    gettext_noop("Your first post: 10 bonus points (for the first 100 users)"),
    gettext_noop("Comment on a post: 2 points each, up to 20 a day"),
    gettext_noop("Share a post: 3 points, each post once a day, up to 5 a day"),
    gettext_noop("Daily sign-in: 10 experience a day"),
    gettext_noop("Publish a post: 20 experience each, up to 10 a day"),
    gettext_noop("Comment on a post: 5 experience each, up to 20 a day"),
    gettext_noop("Sign in 7 days in a row: the 7-day streak badge"),
    gettext_noop("Your first post: the First post badge"),
    gettext_noop("Comment 10 times: the Commenter badge"),
)

# The demo's three badges (SPEC §12): names and descriptions; their images are fixtures/badges/*.svg.
DEMO_BADGES = (
    gettext_noop("7-day streak"),
    gettext_noop("Signed in seven days in a row."),
    gettext_noop("First post"),
    gettext_noop("Published a first post."),
    gettext_noop("Commenter"),
    gettext_noop("Wrote ten comments."),
)

# The demo's point types (积分 to spend, 经验 to rank) and the five levels of experience.
DEMO_NAMES = (
    gettext_noop("Coins"),
    gettext_noop("Experience"),
    gettext_noop("Newcomer"),
    gettext_noop("Beginner"),
    gettext_noop("Skilled"),
    gettext_noop("Expert"),
    gettext_noop("Master"),
)
