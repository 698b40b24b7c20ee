"""Writes of the rules app: applying the engine's decisions (scoring) and the rule workflow."""

from apps.rules.services.scoring import (
    ScoringItem,
    completion_evaluate,
    completion_reverse,
    completions_plan,
    scoring_plan_write,
    site_timezone,
)
from apps.rules.services.workflow import (
    score_rule_activate,
    score_rule_copy_as_draft,
    score_rule_create,
    score_rule_retire,
    score_rule_update,
)

__all__ = [
    "ScoringItem",
    "completion_evaluate",
    "completions_plan",
    "scoring_plan_write",
    "completion_reverse",
    "score_rule_activate",
    "score_rule_copy_as_draft",
    "score_rule_create",
    "score_rule_retire",
    "score_rule_update",
    "site_timezone",
]

from apps.rules.services.sheets import SheetReport, sheet_export, sheet_import  # noqa: E402

__all__ += ["SheetReport", "sheet_export", "sheet_import"]
