from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LedgerConfig(AppConfig):
    name = "apps.ledger"
    label = "ledger"
    verbose_name = _("Ledger")

    def ready(self) -> None:
        # The expiry report's admin lives in its own module, beside the ledger's (admin.py).
        from apps.ledger import admin_expiry  # noqa: F401
