"""Auditors may see the economy's models too: point types, levels, lots, and the rewards app's.

As in 0007: permissions are created first, then auditors get every view permission of Jifen's
and Celery's apps again, so whichever role migration runs last leaves them seeing every model.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

AUDITED_APPS = (
    "tasks",
    "rules",
    "ledger",
    "tracking",
    "community",
    "rewards",
    "django_celery_results",
    "django_celery_beat",
)


def grant(apps, schema_editor):
    using = schema_editor.connection.alias
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    auditors, _ = Group.objects.using(using).get_or_create(name="auditors")
    auditors.permissions.add(
        *Permission.objects.using(using).filter(content_type__app_label__in=AUDITED_APPS, codename__startswith="view_")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0009_point_types_lots"),
        ("ledger", "0007_leaderboard_roles"),
        ("rewards", "0001_initial"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
