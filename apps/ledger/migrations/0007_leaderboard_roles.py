"""Auditors and ledger operators may see the leaderboards (view permission on LeaderboardTotal).

Permissions are created first (post_migrate would create them only after the whole migrate run).
Auditors get every view permission of Jifen's and Celery's apps again, as in
apps/tracking/migrations/0003_roles.py: whichever of these migrations runs later in a fresh
database's plan then still leaves them seeing every model. The groups are found or created by
name and only ever given permissions.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

AUDITED_APPS = ("tasks", "rules", "ledger", "tracking", "community", "django_celery_results", "django_celery_beat")


def grant(apps, schema_editor):
    using = schema_editor.connection.alias
    for app_config in apps.get_app_configs():
        # create_permissions skips app configs without a models module; historical ones have none.
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.using(using).get(content_type__app_label="ledger", codename="view_leaderboardtotal")
    operators, _ = Group.objects.using(using).get_or_create(name="ledger operators")
    operators.permissions.add(view)
    auditors, _ = Group.objects.using(using).get_or_create(name="auditors")
    auditors.permissions.add(
        *Permission.objects.using(using).filter(content_type__app_label__in=AUDITED_APPS, codename__startswith="view_")
    )


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    using = schema_editor.connection.alias
    view = Permission.objects.using(using).filter(content_type__app_label="ledger", codename="view_leaderboardtotal").first()
    if view is not None:
        for group in Group.objects.using(using).filter(name__in=("auditors", "ledger operators")):
            group.permissions.remove(view)


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0006_leaderboard_totals"),
        ("tracking", "0003_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
