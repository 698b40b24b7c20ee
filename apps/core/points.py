"""How many points one amount may move: rule points, per-object points and adjustments share one bound.

A billion points per entry keeps every sum the ledger makes far inside a 64-bit integer: a balance
or a leaderboard total would need more than nine billion such entries to overflow, which no
community reaches. A bigger number is a slip of the keyboard (or a unit mix-up), and is refused with
a message rather than stored, by model validation (the admin, the sheets) and by a database check.
"""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

POINTS_MAX = 1_000_000_000

points_at_most_max = MaxValueValidator(
    POINTS_MAX, message=_("At most %(limit_value)s points in one amount (a bigger one is surely a typo).")
)
points_at_least_minus_max = MinValueValidator(
    -POINTS_MAX, message=_("At least %(limit_value)s points in one amount (a bigger debit is surely a typo).")
)


def signed_points(amount: int) -> str:
    """An amount as messages write it: "+5,000", "-30" (grouped as the active language groups digits)."""
    return ("+" if amount > 0 else "") + number_format(amount, force_grouping=True)
