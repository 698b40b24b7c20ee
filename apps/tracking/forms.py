"""The operator's form for a new service key (admin)."""

from django import forms
from django.core.validators import validate_slug
from django.utils.translation import gettext_lazy as _

from apps.tracking.models import ServiceKey


class ServiceKeyCreateForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=ServiceKey._meta.get_field("name").max_length,
        help_text=ServiceKey._meta.get_field("name").help_text,
    )
    task_types = forms.CharField(
        label=_("Allowed task types"),
        required=False,
        max_length=ServiceKey._meta.get_field("task_types").max_length,
        help_text=ServiceKey._meta.get_field("task_types").help_text,
    )
    may_hold = forms.BooleanField(
        label=_("May hold points"),
        required=False,
        help_text=ServiceKey._meta.get_field("may_hold").help_text,
    )

    def clean_task_types(self) -> str:
        names = [item.strip() for item in self.cleaned_data["task_types"].split(",") if item.strip()]
        for name in names:
            try:
                validate_slug(name)
            except forms.ValidationError:
                raise forms.ValidationError(
                    _("“%(name)s” is not a task type (letters, digits, - and _).") % {"name": name}
                ) from None
        return ",".join(names)
