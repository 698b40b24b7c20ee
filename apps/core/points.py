"""How many points one amount may move: rule points, per-object points and adjustments share one bound.

A billion points per entry keeps every sum the ledger makes far inside a 64-bit integer: a balance
or a leaderboard total would need more than nine billion such entries to overflow, which no
community reaches. A bigger number is a slip of the keyboard (or a unit mix-up), and is refused with
a message rather than stored, by model validation (the admin, the sheets) and by a database check.
"""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
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


POINTS_POSITIVE = _("Points must be a positive whole number.")


class WholeNumberField(models.PositiveIntegerField):
    """A whole number of at least `least`, refused below it with one message wherever it is checked.

    A PositiveIntegerField says "Ensure this value is greater than or equal to 0." from the model
    and again from its form field, beside whatever the model's clean() adds: two messages for one
    cell. Here the model's check, the admin form's and the rule sheets' (which validate the model)
    all give `message`. Stored and migrated as a plain PositiveIntegerField (the bound and message
    are validation, not schema).
    """

    def __init__(self, *args, least: int = 0, message=None, **kwargs):
        self.least, self.least_message = least, message
        super().__init__(*args, **kwargs)

    def _own_minimum(self, validators) -> list:
        kept = [validator for validator in validators if not isinstance(validator, MinValueValidator)]
        return [MinValueValidator(self.least, self.least_message), *kept]

    @property
    def validators(self) -> list:
        return self._own_minimum(super().validators)

    def formfield(self, **kwargs):
        field = super().formfield(**{"min_value": self.least, **kwargs})
        if field is not None:
            field.validators = self._own_minimum(field.validators)
        return field

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.PositiveIntegerField", args, kwargs
