from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "apps.notifications"
    label = "notifications"
    verbose_name = _("Notifications and webhooks")

    def ready(self) -> None:
        from apps.notifications.models import WebhookEndpoint
        from apps.notifications.services.announce import subscriptions_changed

        # This process forgets which endpoints want what as soon as one is saved or deleted here;
        # other processes reread within JIFEN_WEBHOOK_ENDPOINTS_REFRESH_S.
        post_save.connect(subscriptions_changed, sender=WebhookEndpoint, dispatch_uid="notifications-endpoint-saved")
        post_delete.connect(subscriptions_changed, sender=WebhookEndpoint, dispatch_uid="notifications-endpoint-deleted")
