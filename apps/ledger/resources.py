"""Ledger entries as CSV/XLSX rows for the admin's export (django-import-export; export only)."""

from import_export import fields, resources, widgets
from import_export.formats import base_formats

from apps.core.sheets import FORMULA_PREFIXES, LabelledColumnsMixin
from apps.ledger.models import ScoreRecord


class SafeTextWidget(widgets.CharWidget):
    """Text a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, …) is written with a leading `'`.

    The library's own escaping only strips a leading `=`; a reason or rule text such as
    `+cmd|' /C calc'!A0` would still run when the CSV is opened in a spreadsheet.
    """

    def render(self, value, obj=None, **kwargs):
        text = "" if value is None else str(value)
        return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def _text(attribute: str, column: str) -> fields.Field:
    return fields.Field(attribute=attribute, column_name=column, widget=SafeTextWidget(), readonly=True)


class ScoreRecordResource(LabelledColumnsMixin, resources.ModelResource):
    serial_number = _text("serial_number", "serial_number")
    user = _text("user__username", "user")
    point_type = _text("point_type__code", "point_type")
    business_type = _text("business_type", "business_type")
    rule = _text("rule__score_type", "rule")
    reverses = _text("reverses__serial_number", "reverses")
    location = _text("location", "location")
    country = _text("country", "country")
    lang_type = _text("lang_type", "lang_type")
    # The id, not the row: reading each entry's completion would be one query per exported row.
    completion = fields.Field(attribute="completion_id", column_name="completion", widget=widgets.IntegerWidget(), readonly=True)

    class Meta:
        model = ScoreRecord
        fields = (
            "serial_number",
            "created_at",
            "user",
            "point_type",
            "seq",
            "kind",
            "trade_amount",
            "amount_before_trade",
            "amount_after_trade",
            "business_type",
            "rule",
            "completion",
            "reverses",
            "location",
            "country",
            "lang_type",
        )
        export_order = fields


class _EscapedByResourceMixin:
    def _escape_formulae(self, dataset):
        """Nothing to do: the resource's text columns are neutralised already (SafeTextWidget).

        The library's own pass (IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT) would also turn every
        cell into text, so a spreadsheet could no longer sum the amounts.
        """


class LedgerCSV(_EscapedByResourceMixin, base_formats.CSV):
    pass


class LedgerXLSX(_EscapedByResourceMixin, base_formats.XLSX):
    pass
