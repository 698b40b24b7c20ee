"""The holds' admin list: ledger operators and auditors see the holds other systems placed, newest first.

Two indexes serve the list (newest first, and by status) without sorting the table; the view
permission on Hold goes to the ledger operators. Auditors get every view permission of Jifen's and
Celery's apps again, as in apps/ledger/migrations/0007_leaderboard_roles.py, so the models added
since the roles (point types, levels, lots, the rewards app's) are theirs to see too.

Holds change only through the signed API and beat; nobody edits them in the admin. Permissions are
created first (post_migrate would create them only after the whole migrate run). The groups are
found or created by name and only ever given permissions.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations, models

AUDITED_APPS = ("tasks", "rules", "ledger", "tracking", "community", "rewards", "django_celery_results", "django_celery_beat")


def grant(apps, schema_editor):
    using = schema_editor.connection.alias
    for app_config in apps.get_app_configs():
        # create_permissions skips app configs without a models module; historical ones have none.
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.using(using).get(content_type__app_label="rewards", codename="view_hold")
    operators, _ = Group.objects.using(using).get_or_create(name="ledger operators")
    operators.permissions.add(view)
    auditors, _ = Group.objects.using(using).get_or_create(name="auditors")
    auditors.permissions.add(
        *Permission.objects.using(using).filter(content_type__app_label__in=AUDITED_APPS, codename__startswith="view_")
    )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    using = schema_editor.connection.alias
    view = Permission.objects.using(using).filter(content_type__app_label="rewards", codename="view_hold").first()
    if view is not None:
        for group in Group.objects.using(using).filter(name="ledger operators"):
            group.permissions.remove(view)
    views = Permission.objects.using(using).filter(content_type__app_label="rewards", codename__startswith="view_")
    for group in Group.objects.using(using).filter(name="auditors"):
        group.permissions.remove(*views)


class Migration(migrations.Migration):
    dependencies = [
        ("rewards", "0003_redemption_roles"),
        ("tracking", "0003_roles"),  # the groups
    ]

    operations = [
        migrations.AddIndex(model_name="hold", index=models.Index(fields=["-created_at", "-id"], name="hold_recent")),
        migrations.AddIndex(
            model_name="hold", index=models.Index(fields=["status", "-created_at", "-id"], name="hold_status_recent")
        ),
        migrations.RunPython(grant, revoke),
    ]
