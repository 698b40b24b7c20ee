"""The operators' roles (SPEC §7, G9): four groups and their permissions.

- rule editors: author task configs, score rules and per-object points (drafts; the workflow
  services refuse changes to frozen fields, and activating is not theirs);
- rule approvers: see them, and put configs in use / deprecate them, activate / retire rules;
- ledger operators: see the ledger and the per-user data behind it, post adjustments and approve
  other operators' adjustments;
- auditors: see every model of Jifen and of Celery's results and schedules, change nothing.

Permissions are created first (post_migrate would create them only after the whole migrate run),
so the groups get them on a fresh database too. `ledger.approve_adjustment` is created here by
codename if the ledger's own migration has not created it yet; whichever runs second finds it.
The groups are found or created by name and only ever given permissions, so running this on a
database where an operator already made a group of the same name takes nothing away.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

AUDITED_APPS = ("tasks", "rules", "ledger", "tracking", "community", "django_celery_results", "django_celery_beat")

# group -> {"app_label.model": [codename, ...]}
ROLES = {
    "rule editors": {
        "tasks.taskconfig": ["add_taskconfig", "change_taskconfig", "view_taskconfig"],
        "rules.scorerule": ["add_scorerule", "change_scorerule", "view_scorerule"],
        # Deleting a per-object amount is part of editing a draft: the admin allows it only while
        # the rule is being edited, as it does adding and changing one.
        "rules.scoreruleobjectpoints": [
            "add_scoreruleobjectpoints",
            "change_scoreruleobjectpoints",
            "delete_scoreruleobjectpoints",
            "view_scoreruleobjectpoints",
        ],
    },
    "rule approvers": {
        "tasks.taskconfig": ["view_taskconfig", "put_in_use_taskconfig", "deprecate_taskconfig"],
        "rules.scorerule": ["view_scorerule", "activate_scorerule", "retire_scorerule"],
        "rules.scoreruleobjectpoints": ["view_scoreruleobjectpoints"],
    },
    "ledger operators": {
        "ledger.account": ["view_account"],
        "ledger.scorerecord": ["view_scorerecord"],
        "ledger.adjustment": ["view_adjustment", "add_adjustment", "approve_adjustment"],
        # The per-user page shows progress on the rules and the completions behind the entries.
        "rules.scorerule": ["view_scorerule"],
        "rules.userscoreinfo": ["view_userscoreinfo"],
        "tasks.usertaskrecord": ["view_usertaskrecord"],
    },
}

# Permissions another branch declares in Meta.permissions; created here if still missing.
DECLARED_ELSEWHERE = {("ledger", "adjustment", "approve_adjustment"): "Can approve or reject adjustments"}


def _ensure_permissions(apps, using):
    for app_config in apps.get_app_configs():
        # create_permissions skips app configs without a models module; historical ones have none.
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
        app_config.models_module = None
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    for (app_label, model, codename), name in DECLARED_ELSEWHERE.items():
        content_type, _ = ContentType.objects.using(using).get_or_create(app_label=app_label, model=model)
        Permission.objects.using(using).get_or_create(content_type=content_type, codename=codename, defaults={"name": name})


def create_roles(apps, schema_editor):
    using = schema_editor.connection.alias
    _ensure_permissions(apps, using)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")

    for group_name, grants in ROLES.items():
        group, _ = Group.objects.using(using).get_or_create(name=group_name)
        for model_key, codenames in grants.items():
            app_label, model = model_key.split(".")
            found = list(
                Permission.objects.using(using).filter(
                    content_type__app_label=app_label, content_type__model=model, codename__in=codenames
                )
            )
            missing = set(codenames) - {permission.codename for permission in found}
            if missing:
                raise RuntimeError(f"role {group_name!r}: permissions {sorted(missing)} of {model_key} do not exist")
            group.permissions.add(*found)

    auditors, _ = Group.objects.using(using).get_or_create(name="auditors")
    views = Permission.objects.using(using).filter(content_type__app_label__in=AUDITED_APPS, codename__startswith="view_")
    auditors.permissions.add(*views)


def remove_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name__in=[*ROLES, "auditors"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("tracking", "0002_failed_events_heartbeat"),
        ("tasks", "0002_workflow_permissions"),
        ("rules", "0002_workflow_permissions"),
        ("ledger", "0002_append_only_trigger"),
        ("community", "0001_initial"),
        ("django_celery_results", "0014_alter_taskresult_status"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
