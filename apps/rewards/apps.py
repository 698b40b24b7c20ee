from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RewardsConfig(AppConfig):
    name = "apps.rewards"
    label = "rewards"
    verbose_name = _("Rewards")

    def ready(self) -> None:
        # The holds' read-only admin lives in its own module, beside the catalogue's (admin.py).
        from apps.rewards import admin_holds  # noqa: F401
