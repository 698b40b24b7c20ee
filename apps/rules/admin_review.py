"""The approvers' review queue: every draft submitted for review, with what activating it would do.

A rule shows its dry run over the last DRY_RUN_DAYS days (or a link to it, when too many
completions to replay in the request); a task config shows which configs in use it would shadow;
a shop item shows its terms (price, stock, limit, level, window).
Each links to its confirmation pages: activate (put in use), or send back with a comment. Rule
editors see the queue too (without the approvers' links), and the drafts sent back to them. Each
operator sees the kinds of drafts they may view.
"""

from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.rewards.item_text import terms
from apps.rewards.models import RewardItem
from apps.rules.admin_dry_run import DRY_RUN_DAYS, dry_run_context
from apps.rules.selectors.review import review_queue
from apps.tasks.models import TaskConfig
from apps.tasks.selectors import config_shadowing


class ReviewQueueAdminMixin:
    def get_urls(self):
        return [
            path("review/", self.admin_site.admin_view(self.review_queue_view), name="rules_scorerule_review"),
            *super().get_urls(),
        ]

    def review_queue_view(self, request):
        config_admin = self.admin_site._registry.get(TaskConfig)
        item_admin = self.admin_site._registry.get(RewardItem)
        may_see_rules = self.has_view_permission(request)
        may_see_configs = config_admin is not None and config_admin.has_view_permission(request)
        may_see_items = item_admin is not None and item_admin.has_view_permission(request)
        if not (may_see_rules or may_see_configs or may_see_items):
            raise PermissionDenied
        queue = review_queue()
        since = timezone.now() - timedelta(days=DRY_RUN_DAYS)
        rules = [
            {
                "object": rule,
                "change_url": reverse("admin:rules_scorerule_change", args=[rule.pk]),
                "activate_url": reverse("admin:rules_scorerule_workflow", args=[rule.pk, "activate"]),
                "send_back_url": reverse("admin:rules_scorerule_workflow", args=[rule.pk, "send_back"]),
                **dry_run_context(rule, since=since),
            }
            for rule in (queue.rules if may_see_rules else ())
        ]
        configs = [
            {
                "object": config,
                "change_url": reverse("admin:tasks_taskconfig_change", args=[config.pk]),
                "activate_url": reverse("admin:tasks_taskconfig_workflow", args=[config.pk, "put_in_use"]),
                "send_back_url": reverse("admin:tasks_taskconfig_workflow", args=[config.pk, "send_back"]),
                "shadows": config_shadowing(config=config).takes_over,
            }
            for config in (queue.configs if may_see_configs else ())
        ]
        items = [
            {
                "object": item,
                "change_url": reverse("admin:rewards_rewarditem_change", args=[item.pk]),
                "activate_url": reverse("admin:rewards_rewarditem_workflow", args=[item.pk, "activate"]),
                "send_back_url": reverse("admin:rewards_rewarditem_workflow", args=[item.pk, "send_back"]),
                "terms": terms(item),
            }
            for item in (queue.items if may_see_items else ())
        ]
        sent_back = (
            [
                (draft, reverse("admin:tasks_taskconfig_change", args=[draft.pk]))
                for draft in (queue.sent_back_configs if may_see_configs else ())
            ]
            + [
                (draft, reverse("admin:rules_scorerule_change", args=[draft.pk]))
                for draft in (queue.sent_back_rules if may_see_rules else ())
            ]
            + [
                (draft, reverse("admin:rewards_rewarditem_change", args=[draft.pk]))
                for draft in (queue.sent_back_items if may_see_items else ())
            ]
        )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Review queue"),
            "opts": self.opts,
            "rules": rules,
            "configs": configs,
            "items": items,
            "sent_back": sent_back,
            "may_activate_rules": self.has_activate_permission(request),
            "may_put_in_use": config_admin is not None and config_admin.has_put_in_use_permission(request),
            "may_activate_items": item_admin is not None and item_admin.has_activate_permission(request),
            "dry_run_days": DRY_RUN_DAYS,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/rules/review_queue.html", context)
