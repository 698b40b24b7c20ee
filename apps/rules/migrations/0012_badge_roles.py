"""Badges are authored by the rules' roles (SPEC §7, §12):

- rule editors add and change badges (a badge decides nothing: the rule that grants it does, and
  freezes it once active), and see the awards;
- rule approvers see them, to judge a rule that grants one;
- ledger operators see them and who holds them (the per-user page shows a user's badges);
- auditors see every model of ours: badges, their awards and the badges' history.

Nobody but a superuser deletes a badge (one granted by a rule or held by a user cannot be deleted
at all). Permissions are created first (post_migrate would create them only after the whole run).
The groups are found or created by name and only ever given permissions.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "rule editors": ["add_badge", "change_badge", "view_badge", "view_badgeaward"],
    "rule approvers": ["view_badge", "view_badgeaward"],
    "ledger operators": ["view_badge", "view_badgeaward"],
    "auditors": ["view_badge", "view_badgeaward", "view_historicalbadge"],
}


def grant(apps, schema_editor):
    using = schema_editor.connection.alias
    app_config = apps.get_app_config("rules")
    app_config.models_module = True  # historical app configs have none; create_permissions skips those
    create_permissions(app_config, verbosity=0, using=using, apps=apps)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    rules = Permission.objects.using(using).filter(content_type__app_label="rules")
    for name, codenames in GRANTS.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        found = list(rules.filter(codename__in=codenames))
        missing = set(codenames) - {permission.codename for permission in found}
        if missing:
            raise RuntimeError(f"role {name!r}: permissions {sorted(missing)} of rules do not exist")
        group.permissions.add(*found)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    using = schema_editor.connection.alias
    for name, codenames in GRANTS.items():
        found = Permission.objects.using(using).filter(content_type__app_label="rules", codename__in=codenames)
        for group in Group.objects.using(using).filter(name=name):
            group.permissions.remove(*found)


class Migration(migrations.Migration):
    dependencies = [
        ("rules", "0011_badges"),
        ("tracking", "0003_roles"),  # the groups
    ]

    operations = [migrations.RunPython(grant, revoke)]
