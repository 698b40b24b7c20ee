from django.contrib.admin.apps import AdminConfig


class JifenAdminConfig(AdminConfig):
    """The admin with `config.admin.JifenAdminSite` as `admin.site`, so every registration lands on it."""

    default_site = "config.admin.JifenAdminSite"
