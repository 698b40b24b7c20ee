"""Rule-sheet import and export in the admin (django-import-export), with the shell's guarantees.

The admin path and `manage.py import_rules` share the resources (which validate every row and
roll the whole sheet back if any is bad), the formats (StrictXLSX refuses formula cells) and
`sheet_errors` (the row-and-column messages). The preview is a dry run; confirming imports
again, validating every row again, so a sheet that went bad in between is still refused whole.
"""

from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from import_export.admin import ImportExportMixin
from import_export.formats.base_formats import JSON

from apps.core.sheets import FORMATS, LabelledExportForm, LocalDateExportFilenameMixin
from apps.rules.services.sheets import sheet_errors, sheet_unreadable

SHEET_FORMATS = list(FORMATS.values())


class RuleSheetAdminMixin(LocalDateExportFilenameMixin, ImportExportMixin):
    import_template_name = "admin/rules/sheet_import.html"
    export_form_class = LabelledExportForm

    @property
    def import_formats(self):
        return SHEET_FORMATS

    @property
    def export_formats(self):
        return SHEET_FORMATS

    def has_import_permission(self, request) -> bool:
        # An import adds and changes rows: it needs both rights, whatever import-export's default.
        return self.has_add_permission(request) and self.has_change_permission(request)

    def has_export_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def add_data_read_fail_error_to_form(self, form, e):
        fmt = SHEET_FORMATS[int(form.cleaned_data["format"])]()
        form.add_error("import_file", str(sheet_unreadable(fmt=fmt, error=e)))

    def _sheet_resource(self, request):
        """The sheet's resource class (each of these admins has one), whose labels name its columns."""
        return self.get_import_resource_classes(request)[0]

    @staticmethod
    def _is_json(format_index) -> bool:
        try:
            return SHEET_FORMATS[int(format_index)] is JSON
        except (TypeError, ValueError, IndexError):
            return False

    def import_action(self, request, **kwargs):
        response = super().import_action(request, **kwargs)
        context = getattr(response, "context_data", None) or {}
        result = context.get("result")
        if result is not None and (result.has_errors() or result.has_validation_errors()):
            is_json = self._is_json(context["form"].cleaned_data.get("format"))
            errors = sheet_errors(result, is_json=is_json, resource=self._sheet_resource(request))
            context.update(sheet_errors=errors, sheet_is_json=is_json)
        return response

    def process_result(self, result, request):
        if not (result.has_errors() or result.has_validation_errors()):
            return super().process_result(result, request)
        # The sheet went bad between preview and confirm (e.g. a rule was activated meanwhile):
        # the resource rolled everything back; say why instead of "import finished".
        form = self.get_import_form_class(request)(self.get_import_formats(), self.get_import_resource_classes(request))
        is_json = self._is_json(request.POST.get("format"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import"),
            "opts": self.model._meta,
            "form": form,
            "result": result,
            "sheet_errors": sheet_errors(result, is_json=is_json, resource=self._sheet_resource(request)),
            "sheet_is_json": is_json,
            "import_error_display": self.import_error_display,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, [self.import_template_name], context)
