"""The operator's adjustment request form (admin), and the leaderboard's choices (site and admin)."""

import uuid

from django import forms
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.contrib.auth import get_user_model
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.ledger.models import Adjustment, LeaderboardTotal, PointType
from apps.ledger.point_types import default_point_type_id
from apps.ledger.selectors.leaderboard import leaderboard_rules
from apps.ledger.services.adjustments import ADJUSTMENT_MAX_POINTS
from apps.rules.models import ScoreRule


class AdjustmentRequestForm(forms.Form):
    """User, point type, amount and reason; the hidden token makes a second submit of the same form a no-op."""

    user = forms.ModelChoiceField(queryset=get_user_model().objects.all(), label=_("User"))
    point_type = forms.ModelChoiceField(
        queryset=PointType.objects.all(),
        label=_("Point type"),
        empty_label=None,
        required=False,  # left out: the default type
        help_text=_("Which points to credit or debit."),
    )
    amount = forms.IntegerField(
        label=_("Points"),
        min_value=-ADJUSTMENT_MAX_POINTS,
        max_value=ADJUSTMENT_MAX_POINTS,
        help_text=_("Positive to credit the user, negative to debit."),
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=Adjustment._meta.get_field("reason").max_length,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("Kept with the adjustment and shown as what the ledger entry is for."),
    )
    request_token = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, admin_site, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("request_token", uuid.uuid4())
        kwargs["initial"].setdefault("point_type", default_point_type_id())
        super().__init__(*args, **kwargs)
        # The lookup popup, not a <select> of every user.
        self.fields["user"].widget = ForeignKeyRawIdWidget(Adjustment._meta.get_field("user").remote_field, admin_site)

    def clean_amount(self) -> int:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError(_("An adjustment moves at least one point."))
        return amount


class LeaderboardForm(forms.Form):
    """Which leaderboard to show (the site's and the admin's, from the query string): type, board, period, page."""

    PER_PAGE = 50

    period = forms.ChoiceField(label=_("Period"), choices=LeaderboardTotal.Period.choices, required=False)
    point_type = forms.ModelChoiceField(
        label=_("Point type"), queryset=PointType.objects.none(), to_field_name="code", required=False
    )
    rule = forms.ModelChoiceField(
        label=_("Leaderboard"), queryset=ScoreRule.objects.none(), required=False, empty_label=_("All rules")
    )
    page = forms.IntegerField(label=_("Page"), min_value=1, max_value=10_000, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        types = PointType.objects.all()
        self.fields["point_type"].queryset = types
        # The rules offered are the chosen type's (the default type's unless one is chosen).
        chosen = types.filter(code=self.data.get("point_type") or "").first() if self.is_bound else None
        self.fields["rule"].queryset = leaderboard_rules().filter(point_type_id=chosen.pk if chosen else default_point_type_id())
        # The demo's descriptions are in the catalogue (apps/community/demo_texts.py); an operator's show as written.
        self.fields["rule"].label_from_instance = lambda rule: gettext(rule.score_desc) if rule.score_desc else rule.score_type

    def choice(self) -> tuple[ScoreRule | None, str, int, PointType]:
        """(rule or None for overall, period, page, point type), falling back to overall, this week, page 1, the default type.

        A rule's board is in its rule's type, whatever type is asked for.
        """
        data = self.cleaned_data if self.is_valid() else {}
        rule = data.get("rule")
        if rule is not None:
            point_type = rule.point_type
        else:
            point_type = data.get("point_type") or PointType.objects.get(pk=default_point_type_id())
        return rule, data.get("period") or LeaderboardTotal.Period.WEEK, data.get("page") or 1, point_type
