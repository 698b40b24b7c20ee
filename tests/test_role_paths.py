"""Every door that changes a status or posts a ledger entry, tried by every role (SPEC §7, G9).

The doors are found in the code, not listed by hand: the admin site's registered ModelAdmins
(their actions and URLs), the URLconf outside the admin (the site and the JSON API), the services
that take an operator (`actor`) or move a status or post an entry themselves, and our management
commands.
Each one found must be in DOORS (how to go through it, and which roles may) or in NOT_DOORS (why
it changes no status and posts no entry). A new path in neither fails
`test_every_door_in_the_code_is_catalogued`, so it cannot ship without its role check being tried;
an entry whose path is gone fails it too.

Then each door is tried by each role. The superuser is there to show that the door works (the
exercise really changes something when allowed), so a refusal by the others means something.
"""

import contextlib
import importlib
import inspect
import io
import os
import pkgutil
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError
from django.db import transaction
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from apps.community.models import Post
from apps.core.review import ReviewState
from apps.ledger.models import Adjustment, Level, PointType, ScoreRecord
from apps.ledger.point_types import default_point_type_id
from apps.ledger.services import adjustments
from apps.ledger.services.entries import account_lock, ledger_post_entry
from apps.notifications.events import POINTS_AWARDED
from apps.notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from apps.notifications.services.deliveries import webhook_endpoint_create, webhook_endpoint_send_test
from apps.rewards.models import Redemption, RewardItem
from apps.rewards.services import items as item_services
from apps.rewards.services import redemptions
from apps.rules.models import BackfillRun, ScoreRule
from apps.rules.services import backfill, sheets, workflow
from apps.tasks import services as task_services
from apps.tasks.models import TaskConfig
from apps.tracking.models import FailedEvent, ServiceKey
from apps.tracking.services.service_keys import service_key_create
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db

# role -> the migration's groups it holds; the superuser holds everything.
ROLES = {
    "editor": ("rule editors",),
    "approver": ("rule approvers",),
    "operator": ("ledger operators",),
    "auditor": ("auditors",),
    "staff": (),
    "superuser": None,
}
APPROVERS = frozenset({"approver", "superuser"})
OPERATORS = frozenset({"operator", "superuser"})
EDITORS = frozenset({"editor", "superuser"})
SUPERUSER = frozenset({"superuser"})
NOBODY = frozenset()

APPS = ("core", "tasks", "rules", "ledger", "tracking", "community", "rewards", "notifications")
# Django's own ModelAdmin views: every form shows the status read-only (WorkflowAdminMixin) and
# save_model goes through save_with_history, which checks STATUS_PERMISSIONS.
STANDARD_VIEWS = ("changelist", "add", "history", "delete", "change", "autocomplete")
# A service moves a status or posts an entry itself if its body does one of these.
CHANGES_STATUS_OR_POSTS = re.compile(r"\b(transition|ledger_post_entry|ledger_post_entries)\(|\.status = ")


def member(role: str, username: str | None = None):
    username = username or role
    if ROLES[role] is None:
        return UserFactory(username=username, is_staff=True, is_superuser=True)
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(*Group.objects.filter(name__in=ROLES[role]))
    return type(user).objects.get(pk=user.pk)  # permissions are cached per instance


# --- Enumerating the doors in the code ---------------------------------------------------------


def _superuser_request():
    request = RequestFactory().get("/admin/")
    request.user = get_user_model()(username="enumerator", is_staff=True, is_superuser=True, is_active=True)
    return request


def admin_doors() -> Iterator[str]:
    """Every action and every URL of every registered ModelAdmin."""
    request = _superuser_request()
    for model, model_admin in admin.site._registry.items():
        for name in model_admin.get_actions(request):
            yield f"action {model._meta.label_lower}:{name}"
        for pattern in model_admin.get_urls():
            if pattern.name:
                yield f"url admin:{pattern.name}"


def _routes(patterns, prefix: str = "") -> Iterator[str]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue
            yield from _routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def site_doors() -> Iterator[str]:
    """Every route outside the admin: the site's pages and the JSON API."""
    for route in _routes(get_resolver().url_patterns):
        yield f"site /{route}"


def command_doors() -> Iterator[str]:
    """Every management command of ours: a shell is a door too."""
    for name, app in get_commands().items():
        if app.startswith("apps."):
            yield f"command {name}"


def service_functions() -> Iterator[tuple[str, Callable]]:
    for app in APPS:
        try:
            package = importlib.import_module(f"apps.{app}.services")
        except ModuleNotFoundError:
            continue
        modules = [package]
        if hasattr(package, "__path__"):
            modules += [importlib.import_module(f"{package.__name__}.{m.name}") for m in pkgutil.iter_modules(package.__path__)]
        for module in modules:
            for name, function in inspect.getmembers(module, inspect.isfunction):
                if function.__module__ == module.__name__ and not name.startswith("_"):
                    yield f"{module.__name__}.{name}", function


def service_doors() -> Iterator[str]:
    """Services an operator acts through (they take `actor`), or that move a status or post an entry."""
    for name, function in service_functions():
        if "actor" in inspect.signature(function).parameters or CHANGES_STATUS_OR_POSTS.search(inspect.getsource(function)):
            yield f"service {name}"


# --- Setting the scene -----------------------------------------------------------------------


def status_of(obj) -> str:
    model = type(obj)
    return getattr(model, "all_objects", model._default_manager).get(pk=obj.pk).status


def draft_rule(**fields) -> ScoreRule:
    return ScoreRuleFactory(task_type="post", status=ScoreRule.Status.EDITING, **fields)


def live_rule() -> ScoreRule:
    return ScoreRuleFactory(task_type="post", status=ScoreRule.Status.ACTIVE)


def draft_item() -> RewardItem:
    return RewardItem.objects.create(code=f"item-{uuid.uuid4().hex[:8]}", name="A mug", cost=50)


def live_item() -> RewardItem:
    return RewardItem.objects.create(code=f"item-{uuid.uuid4().hex[:8]}", name="A mug", cost=50, status="active")


def draft_config() -> TaskConfig:
    return TaskConfigFactory(status=TaskConfig.Status.EDITING)


def live_config() -> TaskConfig:
    return TaskConfigFactory(status=TaskConfig.Status.IN_USE)


def pending_adjustment() -> Adjustment:
    """Another operator's request, above the approval threshold."""
    requester = member("operator", "requester")
    alice = UserFactory(username="alice")
    return adjustments.adjustment_request(
        user_id=alice.pk, amount=10**6, reason="goodwill", request_token=uuid.uuid4(), actor=requester
    ).adjustment


def service_key() -> ServiceKey:
    return service_key_create(name="crm")[0]


def failed_event() -> FailedEvent:
    return FailedEvent.objects.create(event_id=uuid.uuid4(), payload={"event_id": "x"}, error="boom", attempts=5)


def pending_redemption() -> Redemption:
    """A shopper's redemption of a mug, waiting for an operator."""
    shopper = UserFactory(username="shopper")
    with transaction.atomic():
        account = account_lock(user_id=shopper.pk)
        ledger_post_entry(account=account, amount=100, kind="award", idempotency_key=f"shop:{uuid.uuid4()}")
    RewardItem.objects.get_or_create(code="mug", defaults={"name": "Mug", "cost": 10, "status": RewardItem.Status.ACTIVE})
    return redemptions.redemption_create(user=shopper, item_code="mug", client_key=str(uuid.uuid4())).redemption


# Webhook endpoints carry secrets: managed by superusers only, as service keys are. The URL is
# refused before any connection (an internal address, JIFEN_WEBHOOK_ALLOW_PRIVATE off), so
# "send again" records its attempt without the network.
def webhook_endpoint() -> WebhookEndpoint:
    return webhook_endpoint_create(name="crm", url="http://127.0.0.1:9/hook", event_types=[POINTS_AWARDED])[0]


def disabled_endpoint() -> WebhookEndpoint:
    endpoint = webhook_endpoint()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False, disabled_at=timezone.now(), disabled_reason="failing")
    return endpoint


def failed_delivery() -> WebhookDelivery:
    delivery = webhook_endpoint_send_test(endpoint=webhook_endpoint())
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", next_attempt_at=None)
    return delivery


def _sent_again(delivery) -> bool:
    return WebhookAttempt.objects.filter(delivery_id=delivery.pk, manual=True).exists()


def _enabled(endpoint) -> bool:
    return WebhookEndpoint.objects.get(pk=endpoint.pk).active


def _rotated(endpoint) -> bool:
    return WebhookEndpoint.objects.get(pk=endpoint.pk).secret != endpoint.secret


def _tested(endpoint) -> bool:
    return WebhookDelivery.objects.filter(endpoint_id=endpoint.pk).exists()


def is_gone(obj) -> bool:
    return not type(obj)._default_manager.filter(pk=obj.pk).exists()


def rules_sheet(row: str) -> bytes:
    return f"score_type,task_type,points,statistical_period,status\n{row}\n".encode()


def items_sheet(row: str) -> bytes:
    return f"code,name,cost,status\n{row}\n".encode()


def tasks_sheet(row: str) -> bytes:
    return f"task_type,method,interface_name,status\n{row}\n".encode()


# --- The doors and how to go through them --------------------------------------------------------


@dataclass(frozen=True)
class Door:
    key: str  # as enumerated: "action <model>:<name>", "url admin:<name>", "service <module.function>"
    label: str
    allowed: frozenset[str]
    go: Callable  # go(client, user) -> whether the status changed or an entry was posted
    # For a button: open(client) -> (the response to a GET of its URL, whether anything changed)
    open: Callable | None = None

    def __str__(self) -> str:
        return self.label


def action(
    model: str, name: str, make: Callable, happened: Callable, allowed: frozenset[str], label: str = "", data=None
) -> Door:
    def go(client, user):
        obj = make()
        app_label, model_name = model.split(".")
        url = reverse(f"admin:{app_label}_{model_name}_changelist")
        client.post(url, {"action": name, "_selected_action": [obj.pk], "post": "yes", **(data or {})})
        return happened(obj)

    return Door(f"action {model}:{name}", label or f"action {model}:{name}", allowed, go)


def button(url_name: str, make: Callable, happened: Callable, allowed: frozenset[str], *, args=(), data=None, label="") -> Door:
    def go(client, user):
        obj = make()
        client.post(reverse(f"admin:{url_name}", args=[obj.pk, *args]), data or {})
        return happened(obj)

    def open_(client):
        obj = make()
        return client.get(reverse(f"admin:{url_name}", args=[obj.pk, *args])), happened(obj)

    return Door(f"url admin:{url_name}", label or f"button {url_name} {' '.join(args)}", allowed, go, open_)


def sheet(model: str, content: bytes, make: Callable, happened: Callable, *, confirm: bool) -> Door:
    """Upload a sheet to the admin's import page and, if `confirm`, confirm its preview."""

    def go(client, user):
        obj = make()
        preview = client.post(
            reverse(f"admin:{model}_import"),
            {"resource": "0", "format": "0", "import_file": SimpleUploadedFile("sheet.csv", content)},
        )
        form = (getattr(preview, "context", None) or {}).get("confirm_form")
        if confirm and form is not None:
            data = {name: form.initial.get(name, "") for name in form.fields}
            client.post(reverse(f"admin:{model}_process_import"), data)
        return happened(obj)

    name = f"{model}_process_import" if confirm else f"{model}_import"
    return Door(f"url admin:{name}", f"sheet {name}", SUPERUSER if confirm else NOBODY, go)


def service(function: Callable, make: Callable, call: Callable, happened: Callable, allowed: frozenset[str], label="") -> Door:
    """call(obj, actor) runs the service; a refusal is any exception (PermissionDenied, AdjustmentForbidden, …)."""

    def go(client, user):
        obj = make()
        # Which refusal (PermissionDenied, AdjustmentForbidden, …) does not matter, only that nothing happened.
        with contextlib.suppress(Exception):
            call(obj, user)
        return happened(obj)

    name = f"{function.__module__}.{function.__name__}"
    return Door(f"service {name}", label or f"service {name}", allowed, go)


def became(status: str) -> Callable:
    return lambda obj: status_of(obj) == status


def posted(obj) -> bool:
    return ScoreRecord.objects.filter(kind=ScoreRecord.Kind.ADJUSTMENT).exists()


def new_copy(obj) -> bool:
    return type(obj).objects.count() > 1 + (type(obj) is TaskConfig)  # the scene's "post" config


_RuleS, _TaskS, _AdjS, _ItemS = ScoreRule.Status, TaskConfig.Status, Adjustment.Status, RewardItem.Status
_RedS = Redemption.Status
_COMMENT = {"comment": "please narrow it"}
_NOTE = {"comment": "out of mugs"}


def _review_state(obj) -> str:
    return type(obj).all_objects.get(pk=obj.pk).review_state


def in_review(obj) -> bool:
    return _review_state(obj) == ReviewState.SUBMITTED


def sent_back(obj) -> bool:
    return _review_state(obj) == ReviewState.SENT_BACK


def submitted(make: Callable) -> Callable:
    """A draft an editor has submitted for review."""

    def make_submitted():
        obj = make()
        type(obj).all_objects.filter(pk=obj.pk).update(review_state=ReviewState.SUBMITTED)
        return type(obj).all_objects.get(pk=obj.pk)

    return make_submitted


def _backfilled(rule) -> bool:
    return status_of(rule) == _RuleS.ACTIVE or BackfillRun.objects.filter(rule=rule).exists()


def _past_draft() -> ScoreRule:
    return draft_rule(start_time=timezone.now() - timedelta(days=3))


def _adjust(obj, actor):
    alice = UserFactory(username="alice")
    adjustments.adjustment_request(user_id=alice.pk, amount=5, reason="goodwill", request_token=uuid.uuid4(), actor=actor)


def change_form(url_name: str, make: Callable, fields: Callable, happened: Callable) -> Door:
    """Save the change form with a status in the POST: it is read-only, so nobody moves it this way."""

    def go(client, user):
        obj = make()
        client.post(reverse(f"admin:{url_name}", args=[obj.pk]), {**fields(obj), "status": "active", "_save": "Save"})
        if user.is_superuser:  # the form really saves (its description), so the unchanged status means something
            stored = type(obj).all_objects.get(pk=obj.pk)
            described = ("score_desc", "task_desc", "description")
            assert "changed" in {getattr(stored, name, None) for name in described}
        return happened(obj)

    return Door(f"url admin:{url_name}", f"change form {url_name}", NOBODY, go)


def _rule_form(rule: ScoreRule) -> dict:
    return {
        "score_type": rule.score_type,
        "task_type": rule.task_type,
        "score_desc": "changed",
        "kind": rule.kind,
        "points": rule.points,
        "point_type": rule.point_type_id,
        "statistical_period": rule.statistical_period,
        "required_number_of_times": rule.required_number_of_times,
        "can_repeat": "on",
        "cooldown_scope": rule.cooldown_scope,
        "object_points-TOTAL_FORMS": 0,
        "object_points-INITIAL_FORMS": 0,
    }


def _config_form(config: TaskConfig) -> dict:
    return {
        "task_type": config.task_type,
        "task_desc": "changed",
        "method": config.method,
        "interface_name": config.interface_name,
        "priority": 0,
        "success_status_min": 200,
        "success_status_max": 299,
    }


def _item_form(item: RewardItem) -> dict:
    return {
        "code": item.code,
        "name": item.name,
        "description": "changed",
        "cost": item.cost,
        "point_type": item.point_type_id,
        "limit_period": item.limit_period,
        "position": 0,
    }


def _saved_as_draft(obj) -> bool:
    """The form was saved (its description changed) yet the status moved: what must never happen."""
    stored = type(obj).all_objects.get(pk=obj.pk)
    return stored.status != obj.status


def command(name: str, make: Callable, args: Callable, happened: Callable, allowed: frozenset[str]) -> Door:
    """Run the command with --user naming the role's user; a refusal is a CommandError."""

    def go(client, user):
        obj = make()
        arguments = args(obj)
        try:
            with contextlib.suppress(CommandError):
                call_command(name, *arguments, "--user", user.get_username(), stdout=io.StringIO(), stderr=io.StringIO())
        finally:
            for argument in arguments:  # the sheet file written for it
                if os.path.isfile(argument):
                    os.unlink(argument)
        return happened(obj)

    return Door(f"command {name}", f"command {name} --user", allowed, go)


def _sheet_file(rule: ScoreRule) -> str:
    handle = tempfile.NamedTemporaryFile("wb", suffix=".csv", delete=False)  # noqa: SIM115 - the command opens it by name
    with handle:
        handle.write(rules_sheet(f"{rule.score_type},post,1,day,active"))
    return handle.name


def _item_sheet_file(item: RewardItem) -> list[str]:
    handle = tempfile.NamedTemporaryFile("wb", suffix=".csv", delete=False)  # noqa: SIM115 - the command opens it by name
    with handle:
        handle.write(items_sheet(f"{item.code},A mug,50,active"))
    return [handle.name, "--resource", "items"]


def _item_sheet_import(obj, actor):
    content = items_sheet(f"{obj.code},A mug,50,active")
    sheets.sheet_import(resource="items", path="items.csv", content=content, actor=actor)


def _adjustment_form(client, user):
    alice = UserFactory(username="alice")
    data = {"user": alice.pk, "amount": 5, "reason": "goodwill", "request_token": uuid.uuid4()}
    client.post(reverse("admin:ledger_adjustment_add"), data)
    return posted(None)


def _sheet_import(obj, actor):
    content = rules_sheet(f"{obj.score_type},post,1,day,active")
    sheets.sheet_import(resource="rules", path="rules.csv", content=content, actor=actor)


# Point types and levels: a type's expiry and whether it can be spent decide what points are worth,
# so the rule approvers manage them (apps/ledger/migrations/0012_point_type_admin.py); nobody
# deletes the default type, nor a type in use.
def unused_type() -> PointType:
    return PointType.objects.create(code="gems", name="Gems")


def default_type() -> PointType:
    return PointType.objects.get(pk=default_point_type_id())


def a_level() -> Level:
    return Level.objects.create(point_type=unused_type(), name="Bronze", threshold=0)


def _type_form(**fields) -> dict:
    return {
        "code": "gems",
        "name": "Gems",
        "position": 0,
        "spendable": "on",
        "expiry": "never",
        "levels-TOTAL_FORMS": 0,
        "levels-INITIAL_FORMS": 0,
        **fields,
    }


def _add_type(client, user):
    client.post(reverse("admin:ledger_pointtype_add"), _type_form())
    return PointType.objects.filter(code="gems").exists()


def _change_expiry(client, user):
    kind = unused_type()
    client.post(reverse("admin:ledger_pointtype_change", args=[kind.pk]), _type_form(expiry="year_end"))
    return PointType.objects.get(pk=kind.pk).expiry == "year_end"


def _add_level(client, user):
    kind = unused_type()
    client.post(reverse("admin:ledger_level_add"), {"point_type": kind.pk, "name": "Bronze", "threshold": 0})
    return Level.objects.filter(point_type=kind).exists()


def a_badge():
    from apps.rules.models import Badge

    return Badge.objects.create(code=f"badge-{uuid.uuid4().hex[:8]}", name="Badge")


def _badge_named(name: str) -> bool:
    from apps.rules.models import Badge

    return Badge.objects.filter(name=name).exists()


def _add_badge(client, user):
    client.post(reverse("admin:rules_badge_add"), {"code": "streak-7", "name": "Streak", "description": ""})
    return _badge_named("Streak")


def _rename_badge(client, user):
    badge = a_badge()
    client.post(reverse("admin:rules_badge_change", args=[badge.pk]), {"name": "Renamed", "description": ""})
    return _badge_named("Renamed")


DOORS = [
    # The admin's list actions.
    action("tasks.taskconfig", "put_in_use", draft_config, became(_TaskS.IN_USE), APPROVERS),
    action("tasks.taskconfig", "deprecate", live_config, became(_TaskS.DEPRECATED), APPROVERS),
    action("tasks.taskconfig", "submit_for_review", draft_config, in_review, EDITORS),
    action("rules.scorerule", "activate", draft_rule, became(_RuleS.ACTIVE), APPROVERS),
    action("rules.scorerule", "retire", live_rule, became(_RuleS.RETIRED), APPROVERS),
    action("rules.scorerule", "submit_for_review", draft_rule, in_review, EDITORS),
    action("rewards.rewarditem", "activate", draft_item, became(_ItemS.ACTIVE), APPROVERS),
    action("rewards.rewarditem", "retire", live_item, became(_ItemS.RETIRED), APPROVERS),
    action("rewards.rewarditem", "submit_for_review", draft_item, in_review, EDITORS),
    action("ledger.adjustment", "approve_selected", pending_adjustment, became(_AdjS.POSTED), OPERATORS),
    action("ledger.adjustment", "reject_selected", pending_adjustment, became(_AdjS.REJECTED), OPERATORS),
    action("rewards.redemption", "fulfil_selected", pending_redemption, became(_RedS.FULFILLED), OPERATORS),
    action("rewards.redemption", "cancel_selected", pending_redemption, became(_RedS.CANCELLED), OPERATORS, data=_NOTE),
    action("tracking.failedevent", "retry", failed_event, became(FailedEvent.Status.RETRIED), SUPERUSER),
    action("tracking.failedevent", "delete_selected", failed_event, is_gone, SUPERUSER),
    action(
        "tracking.servicekey", "revoke_selected", service_key, lambda k: not ServiceKey.objects.get(pk=k.pk).is_active, SUPERUSER
    ),
    action("notifications.webhookendpoint", "rotate_secret", webhook_endpoint, _rotated, SUPERUSER),
    action("notifications.webhookendpoint", "send_test", webhook_endpoint, _tested, SUPERUSER),
    action("notifications.webhookendpoint", "enable", disabled_endpoint, _enabled, SUPERUSER),
    action("notifications.webhookdelivery", "send_again", failed_delivery, _sent_again, SUPERUSER),
    # The change pages' buttons.
    button("tasks_taskconfig_workflow", draft_config, became(_TaskS.IN_USE), APPROVERS, args=("put_in_use",)),
    button("tasks_taskconfig_workflow", live_config, became(_TaskS.DEPRECATED), APPROVERS, args=("deprecate",)),
    button("rules_scorerule_workflow", draft_rule, became(_RuleS.ACTIVE), APPROVERS, args=("activate",)),
    button("rules_scorerule_workflow", live_rule, became(_RuleS.RETIRED), APPROVERS, args=("retire",)),
    button(
        "rules_scorerule_workflow",
        _past_draft,
        _backfilled,
        APPROVERS,
        args=("activate",),
        data={"choice": "backfill"},
        label="button activate and backfill",
    ),
    button(
        "rules_scorerule_workflow",
        _past_draft,
        became(_RuleS.ACTIVE),
        APPROVERS,
        args=("activate",),
        data={"choice": "activate"},
        label="button activate only (past start)",
    ),
    button("tasks_taskconfig_workflow", draft_config, in_review, EDITORS, args=("submit_for_review",)),
    button("rules_scorerule_workflow", draft_rule, in_review, EDITORS, args=("submit_for_review",)),
    button("tasks_taskconfig_workflow", submitted(draft_config), sent_back, APPROVERS, args=("send_back",), data=_COMMENT),
    button("rules_scorerule_workflow", submitted(draft_rule), sent_back, APPROVERS, args=("send_back",), data=_COMMENT),
    button("rewards_rewarditem_workflow", draft_item, became(_ItemS.ACTIVE), APPROVERS, args=("activate",)),
    button("rewards_rewarditem_workflow", live_item, became(_ItemS.RETIRED), APPROVERS, args=("retire",)),
    button("rewards_rewarditem_workflow", draft_item, in_review, EDITORS, args=("submit_for_review",)),
    button("rewards_rewarditem_workflow", submitted(draft_item), sent_back, APPROVERS, args=("send_back",), data=_COMMENT),
    # Live and retired rules, configs and items are retired, never deleted: nobody, the superuser included.
    button("rules_scorerule_delete", live_rule, is_gone, NOBODY, data={"post": "yes"}, label="delete a live rule"),
    button("tasks_taskconfig_delete", live_config, is_gone, NOBODY, data={"post": "yes"}, label="delete a live config"),
    button("rules_scorerule_delete", draft_rule, is_gone, SUPERUSER, data={"post": "yes"}, label="delete a draft rule"),
    button("rewards_rewarditem_delete", live_item, is_gone, NOBODY, data={"post": "yes"}, label="delete a live item"),
    button("rewards_rewarditem_delete", draft_item, is_gone, SUPERUSER, data={"post": "yes"}, label="delete a draft item"),
    button("ledger_adjustment_approve", pending_adjustment, became(_AdjS.POSTED), OPERATORS),
    button("ledger_adjustment_reject", pending_adjustment, became(_AdjS.REJECTED), OPERATORS),
    button("rewards_redemption_fulfil", pending_redemption, became(_RedS.FULFILLED), OPERATORS),
    button("rewards_redemption_cancel", pending_redemption, became(_RedS.CANCELLED), OPERATORS, data=_NOTE),
    button("tracking_servicekey_revoke", service_key, lambda k: not ServiceKey.objects.get(pk=k.pk).is_active, SUPERUSER),
    button("notifications_webhookendpoint_rotate", webhook_endpoint, _rotated, SUPERUSER),
    button("notifications_webhookendpoint_send_test", webhook_endpoint, _tested, SUPERUSER),
    button("notifications_webhookendpoint_enable", disabled_endpoint, _enabled, SUPERUSER),
    button("notifications_webhookdelivery_send_again", failed_delivery, _sent_again, SUPERUSER),
    Door("url admin:ledger_adjustment_add", "adjustment request form", OPERATORS, _adjustment_form),
    Door("url admin:ledger_pointtype_add", "add a point type", APPROVERS, _add_type),
    Door("url admin:ledger_pointtype_change", "change a point type's expiry", APPROVERS, _change_expiry),
    button("ledger_pointtype_delete", unused_type, is_gone, APPROVERS, data={"post": "yes"}, label="delete an unused type"),
    button("ledger_pointtype_delete", default_type, is_gone, NOBODY, data={"post": "yes"}, label="delete the default type"),
    Door("url admin:ledger_level_add", "add a level", APPROVERS, _add_level),
    button("ledger_level_delete", a_level, is_gone, APPROVERS, data={"post": "yes"}, label="delete a level"),
    action("ledger.level", "delete_selected", a_level, is_gone, APPROVERS),
    # Badges (SPEC §12) decide nothing themselves (the granting rule does, frozen once active):
    # rule editors make and change them; deleting one is the superuser's alone.
    Door("url admin:rules_badge_add", "add a badge", EDITORS, _add_badge),
    Door("url admin:rules_badge_change", "change a badge", EDITORS, _rename_badge),
    button("rules_badge_delete", a_badge, is_gone, SUPERUSER, data={"post": "yes"}, label="delete a badge"),
    action("rules.badge", "delete_selected", a_badge, is_gone, SUPERUSER),
    change_form("rules_scorerule_change", draft_rule, _rule_form, _saved_as_draft),
    # From a shell, --user names the operator and their rights apply (without it: see tests/rules/test_sheets.py).
    command("import_rules", draft_rule, lambda r: [_sheet_file(r)], became(_RuleS.ACTIVE), SUPERUSER),
    command("backfill_rule", live_rule, lambda r: [r.score_type], lambda r: BackfillRun.objects.exists(), APPROVERS),
    change_form("tasks_taskconfig_change", draft_config, _config_form, _saved_as_draft),
    change_form("rewards_rewarditem_change", draft_item, _item_form, _saved_as_draft),
    command("import_rules", draft_item, _item_sheet_file, became(_ItemS.ACTIVE), SUPERUSER),
    # Sheet imports: a preview changes nothing for anybody; confirming changes a status only for
    # someone who may both import (add, change) and take the step (no single role may).
    sheet(
        "rules_scorerule",
        rules_sheet("imported,post,1,day,active"),
        lambda: None,
        lambda _: ScoreRule.objects.exists(),
        confirm=False,
    ),
    sheet(
        "rules_scorerule",
        rules_sheet("draft-1,post,1,day,active"),
        lambda: draft_rule(score_type="draft-1"),
        became(_RuleS.ACTIVE),
        confirm=True,
    ),
    sheet(
        "tasks_taskconfig",
        tasks_sheet("t-1,POST,^/t/$,in_use"),
        lambda: TaskConfigFactory(task_type="t-1", status="editing"),
        became(_TaskS.IN_USE),
        confirm=True,
    ),
    sheet(
        "rewards_rewarditem",
        items_sheet("imported,A mug,50,active"),
        lambda: None,
        lambda _: RewardItem.objects.exists(),
        confirm=False,
    ),
    sheet(
        "rewards_rewarditem",
        items_sheet("draft-1,A mug,50,active"),
        lambda: RewardItem.objects.create(code="draft-1", name="A mug", cost=50),
        became(_ItemS.ACTIVE),
        confirm=True,
    ),
    sheet(
        "tasks_taskconfig",
        tasks_sheet("t-1,POST,^/t/$,in_use"),
        lambda: None,
        lambda _: TaskConfig.objects.filter(task_type="t-1").exists(),
        confirm=False,
    ),
    # The services behind them, called with each role's user as the operator.
    service(
        task_services.task_config_put_in_use,
        draft_config,
        lambda c, a: task_services.task_config_put_in_use(config=c, actor=a),
        became(_TaskS.IN_USE),
        APPROVERS,
    ),
    service(
        task_services.task_config_deprecate,
        live_config,
        lambda c, a: task_services.task_config_deprecate(config=c, actor=a),
        became(_TaskS.DEPRECATED),
        APPROVERS,
    ),
    service(
        task_services.task_config_update,
        draft_config,
        lambda c, a: task_services.task_config_update(config=c, actor=a, status="in_use"),
        became(_TaskS.IN_USE),
        APPROVERS,
    ),
    service(
        task_services.task_config_create,
        lambda: None,
        lambda _, a: task_services.task_config_create(
            actor=a, task_type="made", method="POST", interface_name="^/m/$", status="in_use"
        ),
        lambda _: TaskConfig.objects.filter(task_type="made").exists(),
        APPROVERS,
    ),
    service(
        workflow.score_rule_activate,
        draft_rule,
        lambda r, a: workflow.score_rule_activate(rule=r, actor=a),
        became(_RuleS.ACTIVE),
        APPROVERS,
    ),
    service(
        workflow.score_rule_retire,
        live_rule,
        lambda r, a: workflow.score_rule_retire(rule=r, actor=a),
        became(_RuleS.RETIRED),
        APPROVERS,
    ),
    service(
        workflow.score_rule_update,
        draft_rule,
        lambda r, a: workflow.score_rule_update(rule=r, actor=a, status="active"),
        became(_RuleS.ACTIVE),
        APPROVERS,
    ),
    service(
        workflow.score_rule_create,
        lambda: None,
        lambda _, a: workflow.score_rule_create(actor=a, task_type="post", score_type="made", points=1, status="active"),
        lambda _: ScoreRule.objects.filter(score_type="made").exists(),
        APPROVERS,
    ),
    service(
        backfill.score_rule_activate_with_backfill,
        _past_draft,
        lambda r, a: backfill.score_rule_activate_with_backfill(rule=r, actor=a),
        _backfilled,
        APPROVERS,
    ),
    service(
        backfill.backfill_request,
        live_rule,
        lambda r, a: backfill.backfill_request(rule=r, actor=a),
        lambda r: BackfillRun.objects.exists(),
        APPROVERS,
    ),
    service(
        backfill.score_rule_backfill,
        live_rule,
        lambda r, a: backfill.score_rule_backfill(rule=r, actor=a, wait=lambda s: None),
        lambda r: BackfillRun.objects.exists(),
        APPROVERS,
    ),
    service(
        workflow.score_rule_submit_for_review,
        draft_rule,
        lambda r, a: workflow.score_rule_submit_for_review(rule=r, actor=a),
        in_review,
        EDITORS,
    ),
    service(
        workflow.score_rule_send_back,
        submitted(draft_rule),
        lambda r, a: workflow.score_rule_send_back(rule=r, actor=a, comment="too generous"),
        sent_back,
        APPROVERS,
    ),
    service(
        task_services.task_config_submit_for_review,
        draft_config,
        lambda c, a: task_services.task_config_submit_for_review(config=c, actor=a),
        in_review,
        EDITORS,
    ),
    service(
        task_services.task_config_send_back,
        submitted(draft_config),
        lambda c, a: task_services.task_config_send_back(config=c, actor=a, comment="too broad"),
        sent_back,
        APPROVERS,
    ),
    service(sheets.sheet_import, draft_rule, _sheet_import, became(_RuleS.ACTIVE), SUPERUSER),
    service(
        sheets.sheet_import, draft_item, _item_sheet_import, became(_ItemS.ACTIVE), SUPERUSER, label="service sheet_import items"
    ),
    service(
        item_services.reward_item_activate,
        draft_item,
        lambda i, a: item_services.reward_item_activate(item=i, actor=a),
        became(_ItemS.ACTIVE),
        APPROVERS,
    ),
    service(
        item_services.reward_item_retire,
        live_item,
        lambda i, a: item_services.reward_item_retire(item=i, actor=a),
        became(_ItemS.RETIRED),
        APPROVERS,
    ),
    service(
        item_services.reward_item_update,
        draft_item,
        lambda i, a: item_services.reward_item_update(item=i, actor=a, status="active"),
        became(_ItemS.ACTIVE),
        APPROVERS,
    ),
    service(
        item_services.reward_item_create,
        lambda: None,
        lambda _, a: item_services.reward_item_create(actor=a, code="made", name="Made", cost=5, status="active"),
        lambda _: RewardItem.objects.filter(code="made").exists(),
        APPROVERS,
    ),
    service(
        item_services.reward_item_submit_for_review,
        draft_item,
        lambda i, a: item_services.reward_item_submit_for_review(item=i, actor=a),
        in_review,
        EDITORS,
    ),
    service(
        item_services.reward_item_send_back,
        submitted(draft_item),
        lambda i, a: item_services.reward_item_send_back(item=i, actor=a, comment="too cheap"),
        sent_back,
        APPROVERS,
    ),
    service(adjustments.adjustment_request, lambda: None, _adjust, posted, OPERATORS),
    service(
        redemptions.redemption_fulfil,
        pending_redemption,
        lambda r, a: redemptions.redemption_fulfil(redemption=r, actor=a),
        became(_RedS.FULFILLED),
        OPERATORS,
    ),
    service(
        redemptions.redemption_cancel,
        pending_redemption,
        lambda r, a: redemptions.redemption_cancel(redemption=r, actor=a, note="out of mugs"),
        became(_RedS.CANCELLED),
        OPERATORS,
    ),
    service(
        redemptions.redemptions_fulfil,
        pending_redemption,
        lambda r, a: redemptions.redemptions_fulfil(redemptions=[r], actor=a),
        became(_RedS.FULFILLED),
        OPERATORS,
    ),
    service(
        redemptions.redemptions_cancel,
        pending_redemption,
        lambda r, a: redemptions.redemptions_cancel(redemptions=[r], actor=a, note="out of mugs"),
        became(_RedS.CANCELLED),
        OPERATORS,
    ),
    service(
        adjustments.adjustment_approve,
        pending_adjustment,
        lambda j, a: adjustments.adjustment_approve(adjustment=j, actor=a),
        became(_AdjS.POSTED),
        OPERATORS,
    ),
    service(
        adjustments.adjustment_reject,
        pending_adjustment,
        lambda j, a: adjustments.adjustment_reject(adjustment=j, actor=a),
        became(_AdjS.REJECTED),
        OPERATORS,
    ),
]

_READS = "reads only (a GET page or an export); writes nothing"
_DRAFT = "makes a draft: no status, no entry (the admin asks for add rights)"
_NO_STATUS = "deletes rows of a model with no status and no ledger entry; Django's delete permission, which no Jifen role holds"
_POINTS = "per-object amounts have no status and post nothing; a live rule's are frozen"
_PRIMITIVE = "the ledger's primitive: its callers (adjustments, workers) are the doors"
_BEAT = "Celery beat's schedules: superusers only (no Jifen role holds change_periodictask)"
_SITE = "a site user's own request: it may earn points through the rules (the user's own events), never moves a status"

NOT_DOORS = {
    "action tasks.taskconfig:copy_as_draft": _DRAFT,
    "action rules.scorerule:copy_as_draft": _DRAFT,
    "service apps.tasks.services.task_config_copy_as_draft": _DRAFT,
    "service apps.rules.services.workflow.score_rule_copy_as_draft": _DRAFT,
    "action rewards.rewarditem:copy_as_draft": _DRAFT,
    "service apps.rewards.services.items.reward_item_copy_as_draft": _DRAFT,
    "url admin:rewards_rewarditem_export": _READS,
    "url admin:tasks_taskconfig_test_request": _READS,
    "url admin:tasks_taskconfig_export": _READS,
    "url admin:tasks_usertaskrecord_why": _READS,
    "url admin:rules_scorerule_dry_run": _READS,
    "url admin:rules_scorerule_review": _READS,
    "url admin:rules_scorerule_export": _READS,
    "url admin:rules_scoreruleobjectpoints_export": _READS,
    "url admin:ledger_account_user": _READS,
    "url admin:ledger_scorerecord_export": _READS,
    "url admin:rules_scoreruleobjectpoints_import": _POINTS,
    "url admin:rules_scoreruleobjectpoints_process_import": _POINTS,
    "service apps.ledger.services.entries.ledger_post_entry": _PRIMITIVE,
    "service apps.ledger.services.entries.ledger_post_entries": _PRIMITIVE,
    "service apps.tracking.services.pipeline.failed_event_retry": "the admin's retry action (a door above) is its only caller",
    **{
        f"action django_celery_beat.periodictask:{name}": _BEAT
        for name in ("enable_tasks", "disable_tasks", "toggle_tasks", "run_tasks")
    },
    "command export_rules": "writes a sheet of the rules; changes nothing",
    "command simulate_rule": "a dry run: writes nothing",
    "command verify_ledger": "reads the ledger and reports",
    "command expire_points": (
        "the daily expiry job that beat runs (SPEC §11): posts what the point types' expiry policies say, "
        "never early (--at may not be in the future); no operator's decision, so no role applies"
    ),
    "command send_expiry_notices": (
        "the daily notice job that beat runs (SPEC §12): tells users of their own points expiring, once per "
        "account and day; no operator's decision, so no role applies"
    ),
    "service apps.rewards.services.holds.hold_place": (
        "another system's door (POST /api/holds), signed with a service key that may hold points, not an operator's; "
        "tests/rewards/test_holds.py tries it with every kind of key"
    ),
    "command rebuild_leaderboards": "recomputes the leaderboard totals from the ledger: no status, no entry",
    "command ingest_events": "events from a file, as POST /api/events: the rules award them; no operator's status or entry",
    "command demo_setup": "a fresh machine's set-up (make run): migrates, loads the demo, creates admin and approver",
    "command seed_demo_data": (
        "bulk demo and benchmark data: posts awards and adjustments as the system's seed-operator, "
        "for a development checkout; names no operator, so no role applies"
    ),
    "action axes.accessattempt:cleanup_expired_attempts": "login throttling's records: no status, no entry; superusers only",
    **{
        f"action {label}:delete_selected": _NO_STATUS
        for label in (
            "auth.group",
            "auth.user",
            "axes.accessattempt",
            "axes.accesslog",
            "axes.accessfailurelog",
            "community.checkin",
            "community.comment",
            "community.post",
            "community.share",
            "django_celery_beat.clockedschedule",
            "django_celery_beat.crontabschedule",
            "django_celery_beat.intervalschedule",
            "django_celery_beat.periodictask",
            "django_celery_beat.solarschedule",
            "django_celery_results.groupresult",
            "django_celery_results.taskresult",
            "tracking.outboxevent",
            "notifications.webhookendpoint",
        )
    },
}


def site_not_doors() -> dict[str, str]:
    """Routes outside the admin: none of them is a door (checked by posting to each as each role below)."""
    return {key: _SITE for key in site_doors()}


def test_every_door_in_the_code_is_catalogued():
    found = set(admin_doors()) | set(service_doors()) | set(command_doors())
    # Django's own views are covered by the status being read-only and save_with_history's check,
    # unless a ModelAdmin made one a door of its own (the adjustment request form).
    standard = {key for key in found if key.startswith("url ") and key.endswith(STANDARD_VIEWS)}
    known = {door.key for door in DOORS} | set(NOT_DOORS) | standard
    assert not found - known, f"new paths: add each to DOORS (with the roles that may) or NOT_DOORS: {sorted(found - known)}"
    assert not known - found, f"catalogued paths that are gone: {sorted(known - found)}"


def test_the_site_and_api_routes_are_found():
    routes = set(site_doors())
    assert {"site /api/events", "site /checkin/", "site /accounts/signup/"} <= routes, sorted(routes)


@pytest.fixture
def scene(settings, monkeypatch):
    # A backfill run is queued on commit, which a test's transaction never reaches: its request is what counts.
    # The command runs one here and then waits for the workers' caches; there are none to wait for.
    monkeypatch.setattr("apps.rules.services.backfill.catch_up_delay_s", lambda: 0)
    settings.JIFEN_ADJUSTMENT_APPROVAL_ABOVE = 100
    TaskConfigFactory(task_type="post", interface_name=r"^/posts/$")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("door", DOORS, ids=str)
def test_each_role_goes_only_through_its_own_doors(client, scene, door, role):
    user = member(role)
    client.force_login(user)
    happened = door.go(client, user)
    assert happened == (role in door.allowed), f"{door} by {role}: {'changed' if happened else 'refused'}"


def _snapshot() -> tuple:
    return (
        sorted(TaskConfig.all_objects.values_list("pk", "status")),
        sorted(ScoreRule.all_objects.values_list("pk", "status")),
        sorted(RewardItem.all_objects.values_list("pk", "status")),
        sorted(Adjustment.objects.values_list("pk", "status")),
        BackfillRun.objects.count(),
        ScoreRecord.objects.exclude(kind=ScoreRecord.Kind.AWARD).count(),
        ServiceKey.objects.filter(revoked_at__isnull=False).count(),
        sorted(Redemption.objects.values_list("pk", "status")),
    )


def _concrete(route: str, post: Post) -> str:
    return "/" + re.sub(r"<(?:\w+:)?\w+>", str(post.pk), route.removeprefix("site /"))


@pytest.mark.parametrize("role", ROLES)
def test_no_route_outside_the_admin_changes_a_status_or_posts_an_operators_entry(client, scene, role):
    draft_rule(score_type="draft"), live_rule(), draft_config(), pending_adjustment(), draft_item(), live_item()
    pending_redemption()
    post = Post.objects.create(author=UserFactory(username="author"), title="t", body="b")
    user = member(role)
    before = _snapshot()
    for key in site_not_doors():
        client.force_login(user)  # a POST to the logout route signs out
        client.post(_concrete(key, post), {"status": "active", "action": "activate", "amount": 5000})
        assert _snapshot() == before, key


@pytest.mark.parametrize("door", [door for door in DOORS if door.open], ids=str)
def test_a_button_url_opened_by_get_asks_and_changes_nothing(client, scene, door):
    """A reload, a bookmark or a link opened in a new tab: the question again, never a bare 405 or the step itself."""
    client.force_login(member("superuser"))
    response, happened = door.open(client)
    assert not happened, f"GET of {door} changed something"
    if door.allowed:
        page = response.content.decode()
        assert response.status_code == 200, f"GET of {door}: {response.status_code}"
        assert 'method="post"' in page and ('id="confirm-step"' in page or 'type="submit"' in page), door
    else:
        assert response.status_code == 403, f"GET of {door}: {response.status_code}"
