"""Auditors may see notifications, webhook endpoints (never their secrets, which no admin page shows),
deliveries and attempts. Managing endpoints is left to superusers, as for service keys: no role gets
add or change on them. And an index for counting the given-up deliveries.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations, models

MODELS = ("notification", "webhookendpoint", "webhookdelivery", "webhookattempt")


def grant(apps, schema_editor):
    using = schema_editor.connection.alias
    app_config = apps.get_app_config("notifications")
    # create_permissions skips app configs without a models module; historical ones have none.
    app_config.models_module = True
    create_permissions(app_config, verbosity=0, using=using, apps=apps)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    auditors, _ = Group.objects.using(using).get_or_create(name="auditors")
    views = Permission.objects.using(using).filter(
        content_type__app_label="notifications", content_type__model__in=MODELS, codename__startswith="view_"
    )
    auditors.permissions.add(*views)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    using = schema_editor.connection.alias
    views = Permission.objects.using(using).filter(content_type__app_label="notifications", content_type__model__in=MODELS)
    for group in Group.objects.using(using).filter(name="auditors"):
        group.permissions.remove(*views)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
        ("tracking", "0003_roles"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="webhookdelivery",
            index=models.Index(condition=models.Q(("status", "failed")), fields=["endpoint"], name="delivery_failed"),
        ),
        migrations.RunPython(grant, revoke),
    ]
