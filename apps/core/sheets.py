"""Spreadsheet plumbing shared by the rule-sheet resources: safe text cells, strict XLSX reading."""

import copy
from datetime import date, datetime, time, timedelta
from io import BytesIO
from zoneinfo import ZoneInfo

import tablib
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.utils import translation
from django.utils.dateparse import parse_date, parse_datetime, parse_duration
from django.utils.duration import duration_string
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from import_export import widgets
from import_export.formats import base_formats
from import_export.forms import SelectableFieldsExportForm

from apps.core.clock import file_stamp
from apps.core.lifecycle import operator_fields, status_permission_error
from apps.core.text import text_problem

# A cell that a spreadsheet would run as a formula (CSV/formula injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Export puts this before such text so a spreadsheet shows it as text; import takes it off again,
# so a sheet exported and imported unchanged changes nothing.
FORMULA_ESCAPE = "'"


class LocalDateExportFilenameMixin:
    """Export file names carry the site's date (import-export's own default takes UTC's), e.g. ScoreRule-2026-12-01.csv."""

    def get_export_filename(self, request, queryset, file_format):
        return f"{self.model.__name__}-{file_stamp()}.{file_format.get_extension()}"


class LabelledColumnsMixin:
    """Sheet and export columns headed by the admin's labels ("Description", "Recipient cap"), not field codes.

    Headers are written in the active language, as the admin shows its labels. Reading a sheet,
    a column may be headed by its label in any of settings.LANGUAGES or by the field's code
    (`score_desc`, `number_limit_all`: what sheets said before), in any case; inside, columns
    keep their codes. `labels` overrides a label where a column is not a model field.
    """

    labels: dict = {}

    @classmethod
    def column_label(cls, field) -> str:
        """The admin's label of a resource field, in the active language."""
        if field.column_name in cls.labels:
            return capfirst(str(cls.labels[field.column_name]))
        name = (field.attribute or field.column_name).split("__")[0]
        try:
            verbose = cls._meta.model._meta.get_field(name).verbose_name
        except FieldDoesNotExist:
            return field.column_name
        return capfirst(str(verbose))

    @classmethod
    def column_labels(cls) -> dict[str, str]:
        """{column code: label}, in the active language."""
        return {field.column_name: cls.column_label(field) for field in cls().get_export_fields()}

    @classmethod
    def header_aliases(cls) -> dict[str, str]:
        """{a header a sheet may use, folded: column code}: the code itself and its label in every language."""
        aliases = {}
        for code, label in cls.column_labels().items():
            aliases[code.casefold()] = code
            aliases[label.casefold()] = code
        for language, _name in settings.LANGUAGES:
            with translation.override(language):
                aliases.update({label.casefold(): code for code, label in cls.column_labels().items()})
        return aliases

    def get_export_headers(self, selected_fields=None):
        return [self.column_label(field) for field in self.get_export_fields(selected_fields) if field]

    def get_diff_headers(self):
        return [self.column_label(field) for field in self.get_import_fields()]

    def get_user_visible_fields(self):
        shown = []
        for field in super().get_user_visible_fields():
            labelled = copy.copy(field)
            labelled.column_name = self.column_label(field)
            shown.append(labelled)
        return shown

    def columns_by_code(self, dataset) -> None:
        """Rename the dataset's headers, labels or codes in any case and language, to the columns' codes."""
        aliases = self.header_aliases()
        if dataset.headers:
            dataset.headers = [aliases.get(str(header).strip().casefold(), header) for header in dataset.headers]

    def before_import(self, dataset, **kwargs):
        self.columns_by_code(dataset)
        super().before_import(dataset, **kwargs)


class LabelledExportForm(SelectableFieldsExportForm):
    """The export page's column checkboxes say the admin's labels, not "Score Desc"."""

    def _get_field_label(self, resource, field_name: str) -> str:
        field = resource.fields.get(field_name)
        if field is not None and hasattr(resource, "column_label"):
            return resource.column_label(field)
        return super()._get_field_label(resource, field_name)


class SheetError(ValueError):
    """The file as a whole cannot be read; the message says why."""


def _formula_like(text: str) -> bool:
    # '=x is escaped too ('' + =x), so that reading it back gives '=x again.
    return text.lstrip(FORMULA_ESCAPE).startswith(FORMULA_PREFIXES)


def escape_formula(text: str) -> str:
    """`text` as a spreadsheet will show it, never run it: formula-like text gets a leading '."""
    return FORMULA_ESCAPE + text if _formula_like(text) else text


class TextWidget(widgets.CharWidget):
    """Text cells: empty means "", formula-like text is refused, and escaped formula text ('=…) is read back."""

    def clean(self, value, row=None, **kwargs):
        text = "" if value is None else str(value).strip()
        problem = text_problem(text, free_text=True)
        if problem is not None:
            # NUL would fail at the database with a message naming no cell; a surrogate would fail encoding.
            raise ValueError(_("The text %(problem)s.") % {"problem": problem})
        if text.startswith(FORMULA_PREFIXES):
            raise ValueError(
                _("Looks like a spreadsheet formula; start the text with another character, or with ' to keep it as text.")
            )
        if text.startswith(FORMULA_ESCAPE) and _formula_like(text):
            return text[1:]
        return text

    def render(self, value, obj=None, **kwargs):
        return escape_formula("" if value is None else str(value))


class ChoiceWidget(TextWidget):
    """Enum cells hold the stored values (`day`, `streak`, `in_use`, …)."""

    def __init__(self, choices, *, default: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.values = [value for value, _label in choices]
        self.default = default

    def clean(self, value, row=None, **kwargs):
        text = super().clean(value, row, **kwargs)
        if text == "" and self.default is not None:
            return self.default
        if text not in self.values:
            raise ValueError(_("%(value)r is not one of: %(values)s") % {"value": text, "values": ", ".join(self.values)})
        return text


class WholeNumberWidget(widgets.IntegerWidget):
    """Integer cells; empty means none. 5.0 from a spreadsheet is 5, but 5.5 is refused."""

    def clean(self, value, row=None, **kwargs):
        if value is None or str(value).strip() == "":
            return None
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError(_("Enter a whole number; %(value)r is not one.") % {"value": value}) from None
        if not number.is_integer():
            raise ValueError(_("Enter a whole number; %(value)r is not one.") % {"value": value})
        return int(number)


class MomentWidget(widgets.DateTimeWidget):
    """Date-time cells: ISO 8601 (with or without offset), or a date for its midnight; empty means none.

    A naive time is read in settings.TIME_ZONE; on the autumn DST change a repeated wall-clock
    time means its first occurrence (fold=0).
    """

    def clean(self, value, row=None, **kwargs):
        if value is None or (isinstance(value, str) and value.strip() == ""):
            return None
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime(value.year, value.month, value.day)
        else:
            text = str(value).strip()
            try:
                moment = parse_datetime(text) or (datetime.combine(parse_date(text), time()) if parse_date(text) else None)
            except ValueError:
                moment = None
            if moment is None:
                raise ValueError(_("%(value)r is not a date and time (use e.g. 2026-12-01 08:00, or ISO 8601)") % {"value": text})
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(settings.TIME_ZONE))
        return moment


class DurationWidget(widgets.Widget):
    """Duration cells: 00:10:00 (ten minutes), 1 00:00:00 (a day), ISO 8601 (PT10M) or seconds; empty means none.

    Written as Django writes a duration, which reads back unchanged. A spreadsheet that took
    00:10:00 for a time of day hands over a time: read as that long after midnight.
    """

    def clean(self, value, row=None, **kwargs):
        if value is None or str(value).strip() == "":
            return None
        if isinstance(value, timedelta):
            return value
        if isinstance(value, time):
            return timedelta(hours=value.hour, minutes=value.minute, seconds=value.second, microseconds=value.microsecond)
        text = str(value).strip()
        duration = None if isinstance(value, datetime | date) else parse_duration(text)
        if duration is None:
            raise ValueError(
                _("%(value)r is not a duration (use e.g. 00:10:00 for ten minutes, 1 00:00:00 for a day, or PT10M)")
                % {"value": text}
            )
        return duration

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else duration_string(value)


class FlagWidget(widgets.BooleanWidget):
    """true/false cells; empty takes the field's default."""

    def __init__(self, default: bool, **kwargs):
        super().__init__(**kwargs)
        self.default = default

    def clean(self, value, row=None, **kwargs):
        if value is None or str(value).strip() == "":
            return self.default
        text = str(value).strip().lower()
        if text in ("1", "true", "yes"):
            return True
        if text in ("0", "false", "no"):
            return False
        raise ValueError(_("%(value)r is not true or false") % {"value": value})

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else ("true" if value else "false")


class SheetResourceMixin(LabelledColumnsMixin):
    """What every rule-sheet resource does, whoever imports (admin or shell).

    All or nothing: the sheet is imported in one transaction that is rolled back if any row is
    bad. The id columns are checked like every other column. A row that gives an object a status
    (a new one past the draft, or an existing one moved on) is refused unless the importing `user`
    holds that status's permission (`status_permission_error`): importing a sheet is never a way
    around the workflow's roles, and a sheet imported with no user named changes no status. Saves
    record the importing user and the reason in history.
    """

    def import_data(
        self,
        dataset,
        dry_run=False,
        raise_errors=False,
        use_transactions=None,
        collect_failed_rows=False,
        rollback_on_validation_errors=False,
        **kwargs,
    ):
        return super().import_data(
            dataset,
            dry_run=dry_run,
            raise_errors=raise_errors,
            use_transactions=True,
            collect_failed_rows=collect_failed_rows,
            rollback_on_validation_errors=True,
            **kwargs,
        )

    def before_import_row(self, row, **kwargs):
        # The id columns are read before the row's other fields, outside the per-column error
        # handling; check them here so their errors name the column like every other.
        errors = {}
        for name in self._meta.import_id_fields:
            field = self.fields[name]
            if field.column_name not in row:
                errors[field.column_name] = _("The sheet has no column %(column)s.") % {"column": self.column_label(field)}
                continue
            try:
                value = field.clean(row)
            except ValueError as exc:
                errors[field.column_name] = str(exc)
            else:
                if value in (None, ""):
                    errors[field.column_name] = _("This column is required.")
        if errors:
            raise ValidationError(errors)

    def import_instance(self, instance, row, **kwargs):
        status_before = getattr(instance, "status", None)
        errors = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if status_before is not None:
            refused = status_permission_error(type(instance), old=status_before, new=instance.status, actor=kwargs.get("user"))
            if refused:
                errors.setdefault("status", []).append(refused)
        if errors:
            raise ValidationError(errors)

    def before_save_instance(self, instance, row, **kwargs):
        instance._history_user = kwargs.get("user")
        instance._change_reason = "imported"

    def do_instance_save(self, instance, is_create):
        # A sheet is an operator's save: it writes only the operator's fields (G12), never a
        # counter a worker moved since the row was read.
        instance.save(update_fields=None if is_create else operator_fields(instance))


class StrictXLSX(base_formats.XLSX):
    """XLSX that refuses formula cells instead of silently reading their cached values."""

    def create_dataset(self, in_stream):
        import openpyxl

        try:
            book = openpyxl.load_workbook(BytesIO(in_stream), read_only=True, data_only=False)
        except Exception as exc:  # openpyxl raises many types for a damaged file
            raise SheetError(_("Not a readable XLSX file (%(error)s).") % {"error": exc}) from None
        rows = book.active.iter_rows()
        try:
            headers = [cell.value for cell in next(rows)]
        except StopIteration:
            raise SheetError(_("The sheet is empty.")) from None
        dataset = tablib.Dataset(headers=[str(h).strip() if h is not None else "" for h in headers])
        for number, row in enumerate(rows, start=2):
            values = []
            for cell in row:
                if cell.data_type == "f":
                    raise SheetError(
                        _("Row %(row)s, column %(column)s holds a formula.") % {"row": number, "column": cell.column_letter}
                    )
                values.append(cell.value)
            if any(value not in (None, "") for value in values):
                dataset.append(values + [None] * (len(headers) - len(values)))
        return dataset


FORMATS = {".csv": base_formats.CSV, ".xlsx": StrictXLSX, ".json": base_formats.JSON}


def format_for(path: str) -> base_formats.Format:
    """The sheet format named by the file's extension; SheetError for any other."""
    for extension, fmt in FORMATS.items():
        if path.lower().endswith(extension):
            return fmt()
    raise SheetError(_("Unknown file type; use .csv, .xlsx or .json."))
