"""The operator's adjustment request form (admin)."""

import uuid

from django import forms
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from apps.ledger.models import Adjustment
from apps.ledger.services import ADJUSTMENT_MAX_POINTS


class AdjustmentRequestForm(forms.Form):
    """User, amount and reason; the hidden token makes a second submit of the same form a no-op."""

    user = forms.ModelChoiceField(queryset=get_user_model().objects.all(), label=_("User"))
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
        super().__init__(*args, **kwargs)
        # The lookup popup, not a <select> of every user.
        self.fields["user"].widget = ForeignKeyRawIdWidget(Adjustment._meta.get_field("user").remote_field, admin_site)

    def clean_amount(self) -> int:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError(_("An adjustment moves at least one point."))
        return amount
