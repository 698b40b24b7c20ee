"""ScoreRule and per-object points rows in rule sheets (django-import-export)."""

from django.utils.translation import gettext as _
from import_export import fields, resources, widgets

from apps.core.sheets import (
    ChoiceWidget,
    DurationWidget,
    FlagWidget,
    MomentWidget,
    SheetResourceMixin,
    TextWidget,
    WholeNumberWidget,
)
from apps.ledger.models import PointType
from apps.ledger.point_types import point_type_by_code
from apps.rules.models import Badge, ScoreRule, ScoreRuleObjectPoints


class PointTypeCodeWidget(TextWidget):
    """A point type by its code; an empty cell is the default type, an unknown code is refused."""

    def clean(self, value, row=None, **kwargs):
        code = super().clean(value, row, **kwargs)
        point_type = point_type_by_code(code)
        if point_type is None:
            codes = ", ".join(PointType.objects.order_by("position", "id").values_list("code", flat=True))
            raise ValueError(
                _("No point type has the code %(code)r; use one of: %(codes)s (or leave it empty for the default type).")
                % {"code": code, "codes": codes}
            )
        return point_type

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else super().render(value.code, obj, **kwargs)


class BadgeCodeWidget(TextWidget):
    """A badge by its code; an empty cell is no badge, an unknown code is refused."""

    def clean(self, value, row=None, **kwargs):
        code = super().clean(value, row, **kwargs)
        if not code:
            return None
        badge = Badge.objects.filter(code=code).first()
        if badge is None:
            codes = ", ".join(Badge.objects.order_by("code").values_list("code", flat=True)) or "-"
            raise ValueError(
                _("No badge has the code %(code)r; use one of: %(codes)s (or leave it empty for none).")
                % {"code": code, "codes": codes}
            )
        return badge

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else super().render(value.code, obj, **kwargs)


class ScoreRuleResource(SheetResourceMixin, resources.ModelResource):
    score_type = fields.Field(attribute="score_type", column_name="score_type", widget=TextWidget())
    task_type = fields.Field(attribute="task_type", column_name="task_type", widget=TextWidget())
    score_desc = fields.Field(attribute="score_desc", column_name="score_desc", widget=TextWidget())
    kind = fields.Field(attribute="kind", column_name="kind", widget=ChoiceWidget(ScoreRule.Kind.choices, default="count"))
    points = fields.Field(attribute="points", column_name="points", widget=WholeNumberWidget())
    point_type = fields.Field(attribute="point_type", column_name="point_type", widget=PointTypeCodeWidget())
    badge = fields.Field(attribute="badge", column_name="badge", widget=BadgeCodeWidget())
    statistical_period = fields.Field(
        attribute="statistical_period", column_name="statistical_period", widget=ChoiceWidget(ScoreRule.Period.choices)
    )
    required_number_of_times = fields.Field(
        attribute="required_number_of_times", column_name="required_number_of_times", widget=WholeNumberWidget()
    )
    award_limit_per_period = fields.Field(
        attribute="award_limit_per_period", column_name="award_limit_per_period", widget=WholeNumberWidget()
    )
    number_limit_all = fields.Field(attribute="number_limit_all", column_name="number_limit_all", widget=WholeNumberWidget())
    start_time = fields.Field(attribute="start_time", column_name="start_time", widget=MomentWidget())
    end_time = fields.Field(attribute="end_time", column_name="end_time", widget=MomentWidget())
    can_repeat = fields.Field(attribute="can_repeat", column_name="can_repeat", widget=FlagWidget(default=True))
    cooldown = fields.Field(attribute="cooldown", column_name="cooldown", widget=DurationWidget())
    cooldown_scope = fields.Field(
        attribute="cooldown_scope",
        column_name="cooldown_scope",
        widget=ChoiceWidget(ScoreRule.CooldownScope.choices, default="user"),
    )
    status = fields.Field(
        attribute="status", column_name="status", widget=ChoiceWidget(ScoreRule.Status.choices, default="editing")
    )

    class Meta:
        model = ScoreRule
        fields = (
            "score_type",
            "task_type",
            "score_desc",
            "kind",
            "points",
            "point_type",
            "badge",
            "statistical_period",
            "required_number_of_times",
            "award_limit_per_period",
            "number_limit_all",
            "start_time",
            "end_time",
            "can_repeat",
            "cooldown",
            "cooldown_scope",
            "status",
        )
        import_id_fields = ("score_type",)
        clean_model_instances = True
        use_transactions = True
        skip_unchanged = True
        report_skipped = True

    def before_import_row(self, row, **kwargs):
        if "required_number_of_times" in row and str(row["required_number_of_times"] or "").strip() == "":
            row["required_number_of_times"] = 1
        super().before_import_row(row, **kwargs)


class RuleCodeWidget(widgets.ForeignKeyWidget):
    def __init__(self):
        super().__init__(ScoreRule, field="score_type")

    def clean(self, value, row=None, **kwargs):
        try:
            return super().clean(value, row, **kwargs)
        except ScoreRule.DoesNotExist:
            raise ValueError(_("No rule has the code %(code)r.") % {"code": value}) from None


class ObjectPointsResource(SheetResourceMixin, resources.ModelResource):
    labels = {"score_type": ScoreRule._meta.get_field("score_type").verbose_name}  # the rule's code, not "Rule"
    score_type = fields.Field(attribute="rule", column_name="score_type", widget=RuleCodeWidget())
    business_id = fields.Field(attribute="business_id", column_name="business_id", widget=TextWidget())
    points = fields.Field(attribute="points", column_name="points", widget=WholeNumberWidget())

    class Meta:
        model = ScoreRuleObjectPoints
        fields = ("score_type", "business_id", "points")
        import_id_fields = ("score_type", "business_id")
        clean_model_instances = True
        use_transactions = True
        skip_unchanged = True
        report_skipped = True
