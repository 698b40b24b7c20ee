"""The shop in the operator's admin. The redemption queue lives in its own module (`admin_redemptions`)."""

from apps.rewards import admin_redemptions  # noqa: F401 - registers RedemptionAdmin
