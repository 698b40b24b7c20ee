"""Point types and their levels in the operator's admin (SPEC §11), under *Point types & levels*.

A type's expiry policy and whether it can be spent decide what users' points are worth: the rule
approvers manage types and levels (apps/ledger/migrations/0011_point_type_roles.py), everyone else
who works with rules or the ledger sees them. Every change is kept in history. The default type is
never deleted, nor a type anything uses (accounts, rules, adjustments, …); a used type's code, which
sheets and the API name it by, is fixed. A new expiry policy applies to points credited from then
on: lots already credited keep the expiry they were given.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from simple_history.admin import SimpleHistoryAdmin

from apps.core.workflow_admin import AuditHistoryMixin
from apps.ledger.models import Level, PointType
from apps.ledger.selectors.point_types import expiry_text, point_type_delete_blockers, point_type_users

EXPIRY_NOTE = gettext_lazy(
    "A change of the expiry policy applies to points credited from the moment it is saved; points already "
    "credited keep the expiry date they were given."
)


class PointTypeForm(forms.ModelForm):
    class Meta:
        model = PointType
        fields = ("code", "name", "position", "spendable", "expiry", "expiry_months", "adjustment_approval_above")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if PointType.objects.filter(name__iexact=name).exclude(pk=self.instance.pk).exists():
            raise ValidationError(_("Another point type is called %(name)s: users could not tell them apart.") % {"name": name})
        return name


class LevelFormSet(BaseInlineFormSet):
    """A type's levels: names and thresholds unique within the type, said plainly."""

    def clean(self):
        names, thresholds = {}, {}
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or form in self.deleted_forms:
                continue
            name, threshold = (data.get("name") or "").strip().casefold(), data.get("threshold")
            if name and name in names:
                form.add_error("name", _("Two levels are called %(name)s.") % {"name": data["name"]})
            if threshold is not None and threshold in thresholds:
                form.add_error("threshold", _("Two levels start at %(points)s points.") % {"points": threshold})
            names.setdefault(name, form)
            thresholds.setdefault(threshold, form)
        if any(form.errors for form in self.forms):
            return
        super().clean()


class LevelForm(forms.ModelForm):
    class Meta:
        model = Level
        fields = ("point_type", "name", "threshold")

    def clean_name(self) -> str:
        return self.cleaned_data["name"].strip()

    def clean(self):
        data = super().clean()
        name, threshold = data.get("name"), data.get("threshold")
        if threshold is not None and threshold < 0:
            self.add_error("threshold", _("A threshold is a number of earned points: 0 or more."))
        point_type = data.get("point_type")  # on a new type's page, the type is not saved yet: no siblings
        point_type_id = point_type.pk if point_type is not None else self.instance.point_type_id
        if point_type_id is None:
            return data
        siblings = Level.objects.filter(point_type_id=point_type_id).exclude(pk=self.instance.pk)
        if name and siblings.filter(name__iexact=name).exists():
            self.add_error("name", _("This point type already has a level called %(name)s.") % {"name": name})
        if threshold is not None and siblings.filter(threshold=threshold).exists():
            self.add_error("threshold", _("This point type already has a level at %(points)s points.") % {"points": threshold})
        return data


class LevelInline(admin.TabularInline):
    model = Level
    form = LevelForm
    formset = LevelFormSet
    fields = ("name", "threshold")
    ordering = ("threshold",)
    extra = 0
    verbose_name_plural = gettext_lazy("Levels (by lifetime earned points; the first one usually at 0)")


@admin.register(PointType)
class PointTypeAdmin(AuditHistoryMixin, SimpleHistoryAdmin):
    form = PointTypeForm
    list_display = ("code", "name", "spendable", "expiry_column", "is_default", "levels_column", "position")
    list_display_links = ("code", "name")
    ordering = ("position", "id")
    search_fields = ("code", "name")
    inlines = [LevelInline]
    readonly_fields = ("is_default", "created_at")
    history_list_display = ["code", "spendable", "expiry", "expiry_months", "adjustment_approval_above"]
    fieldsets = (
        (None, {"fields": ("code", "name", "position", "is_default", "created_at")}),
        (
            gettext_lazy("Spending and expiry"),
            {"fields": ("spendable", "expiry", "expiry_months"), "description": EXPIRY_NOTE},
        ),
        (gettext_lazy("Adjustments"), {"fields": ("adjustment_approval_above",)}),
    )

    class Media:
        css = {"all": ["css/admin.css"]}

    @admin.display(description=gettext_lazy("expiry"), ordering="expiry")
    def expiry_column(self, point_type: PointType) -> str:
        return expiry_text(point_type)

    @admin.display(description=gettext_lazy("levels"))
    def levels_column(self, point_type: PointType) -> str:
        levels = sorted(point_type.levels.all(), key=lambda level: level.threshold)
        if not levels:
            return "-"
        return format_html_join(" · ", "{}&nbsp;{}", ((level.name, level.threshold) for level in levels))

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("levels")

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        # Sheets and the API name a type by its code: once anything uses the type, it stays.
        if obj is not None and "code" not in readonly and point_type_users(obj):
            readonly.append("code")
        return readonly

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and point_type_delete_blockers(obj):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        # A bulk delete would meet the default type or a used one among the selection: one at a time.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id)) if object_id else None
        if obj is not None and self.has_change_permission(request, obj):
            blockers = point_type_delete_blockers(obj)
            if blockers:
                extra_context = {**(extra_context or {}), "delete_blockers": blockers}
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        obj._change_reason = "changed in the admin" if change else "created in the admin"
        super().save_model(request, obj, form, change)
        if change and {"expiry", "expiry_months"} & set(form.changed_data):
            self.message_user(
                request,
                _(
                    "%(type)s now expires: %(policy)s. This applies to points credited from now on; points already "
                    "credited keep the expiry date they were given."
                )
                % {"type": obj, "policy": expiry_text(obj)},
                messages.WARNING,
            )

    def save_formset(self, request, form, formset, change):
        for level in formset.save(commit=False):
            level._change_reason = "changed in the admin"
            level.save()
        for level in formset.deleted_objects:
            level._change_reason = "deleted in the admin"
            level.delete()


@admin.register(Level)
class LevelAdmin(AuditHistoryMixin, SimpleHistoryAdmin):
    """Every type's levels in one list, each with its history; a type's page edits its own."""

    form = LevelForm
    list_display = ("name", "point_type", "threshold_column")
    list_filter = ("point_type",)
    list_select_related = ("point_type",)
    ordering = ("point_type__position", "point_type_id", "threshold")
    search_fields = ("name",)
    history_list_display = ["name", "threshold"]

    @admin.display(description=gettext_lazy("threshold"), ordering="threshold")
    def threshold_column(self, level: Level) -> str:
        return _("from %(points)s earned points") % {"points": level.threshold}

    def save_model(self, request, obj, form, change):
        obj._change_reason = "changed in the admin" if change else "created in the admin"
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        obj._change_reason = "deleted in the admin"
        super().delete_model(request, obj)
