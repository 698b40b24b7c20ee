"""Rule sheets: TaskConfigs, ScoreRules, per-object points and reward items in and out of CSV, XLSX and JSON.

Import is all or nothing: every row is validated the way the admin validates a form (frozen
fields of active rules included), and if any row is bad, nothing of the sheet is applied and
each bad row and column is named. `manage.py import_rules` goes through `sheet_import`; the
admin's import pages use the same resources (which hold the all-or-nothing transaction), the
same formats and `sheet_errors` for the same messages.
"""

from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import NON_FIELD_ERRORS
from django.utils.translation import gettext as _
from import_export.formats.base_formats import Format
from import_export.results import Result

from apps.core.lifecycle import Actor
from apps.core.sheets import SheetError, format_for
from apps.rewards.resources import RewardItemResource
from apps.rules.resources import ObjectPointsResource, ScoreRuleResource
from apps.tasks.resources import TaskConfigResource

RESOURCES = {
    "tasks": TaskConfigResource,
    "rules": ScoreRuleResource,
    "object-points": ObjectPointsResource,
    "items": RewardItemResource,
}


@dataclass
class SheetReport:
    """What an import did (or, on a dry run or with errors, would have done)."""

    applied: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _resource(name: str):
    try:
        return RESOURCES[name]()
    except KeyError:
        raise SheetError(
            _("Unknown sheet %(name)s; use one of: %(names)s") % {"name": name, "names": ", ".join(RESOURCES)}
        ) from None


def _row_label(number: int, is_json: bool) -> str:
    # Sheet rows count the header as row 1; JSON items count from 1.
    return _("item %(n)s") % {"n": number} if is_json else _("row %(n)s") % {"n": number + 1}


def sheet_unreadable(*, fmt: Format, error: Exception) -> SheetError:
    """The error to report for a file that `fmt` could not parse at all."""
    if isinstance(error, SheetError):
        return error
    return SheetError(_("The file could not be read as %(format)s: %(error)s") % {"format": fmt.get_title(), "error": error})


def column_labels(resource=None) -> dict[str, str]:
    """{column code or field name: the admin's label} of one sheet's resource class, or of every sheet.

    In the active language. Two sheets may label one code differently (a rule's `start_time` is
    "Start time", an item's "Available from"), so a sheet's messages use its own resource's.
    """
    labels = {}
    for handler in [resource] if resource is not None else RESOURCES.values():
        labels.update(handler.column_labels())
        for column in handler().get_export_fields():
            labels.setdefault(column.attribute, handler.column_label(column))
    return labels


def sheet_errors(result: Result, *, is_json: bool = False, resource=None) -> list[str]:
    """Every problem of an import, one message each, naming the row (or JSON item) and column (by its label).

    `resource` is the sheet's resource class, whose labels name the columns.
    """
    labels = column_labels(resource)
    errors = [str(error.error) for error in result.base_errors]
    for number, row_errors in result.row_errors():
        errors.extend(f"{_row_label(number, is_json)}: {error.error}" for error in row_errors)
    for invalid in result.invalid_rows:
        for column, messages in invalid.error_dict.items():
            where = "" if column == NON_FIELD_ERRORS else _(", column %(column)s") % {"column": labels.get(column, column)}
            errors.extend(f"{_row_label(invalid.number, is_json)}{where}: {message}" for message in messages)
    return errors


def sheet_read(*, path: str | Path, content: bytes | None = None):
    """The file's rows as a tablib Dataset; SheetError when the file cannot be read at all."""
    fmt = format_for(str(path))
    if content is None:
        try:
            content = Path(path).read_bytes()
        except OSError as exc:
            raise SheetError(_("Cannot read %(path)s: %(error)s") % {"path": path, "error": exc.strerror}) from None
    if not fmt.is_binary():
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SheetError(_("The file is not UTF-8 text.")) from None
    try:
        return fmt.create_dataset(content)
    except Exception as exc:  # tablib and its parsers raise many types for a malformed file
        raise sheet_unreadable(fmt=fmt, error=exc) from None


def sheet_import(
    *, resource: str, path: str | Path, content: bytes | None = None, dry_run: bool = False, actor: Actor = None
) -> SheetReport:
    """Validate and, unless `dry_run` or any row is bad, apply a rule sheet in one transaction.

    `actor` is the operator importing: like the admin's import, they need the rights to add and
    change the sheet's rows (SheetError otherwise), and a row that changes a status needs that
    status's permission. With no actor, rows are imported as the system's drafts: any row that
    changes a status is refused.
    """
    handler = _resource(resource)
    if actor is not None:
        model = handler._meta.model._meta
        needed = [f"{model.app_label}.{action}_{model.model_name}" for action in ("add", "change")]
        if not actor.has_perms(needed):
            raise SheetError(
                _("%(user)s may not import this sheet: it needs the rights to add and change %(rows)s.")
                % {"user": actor, "rows": model.verbose_name_plural}
            )
    dataset = sheet_read(path=path, content=content)
    handler.columns_by_code(dataset)
    missing = [name for name in handler._meta.import_id_fields if name not in (dataset.headers or [])]
    if missing:
        labels = handler.column_labels()
        raise SheetError(_("The sheet has no column %(columns)s.") % {"columns": ", ".join(labels[name] for name in missing)})
    is_json = str(path).lower().endswith(".json")
    # The resource rolls the whole sheet back if any row is bad (SheetResourceMixin).
    result = handler.import_data(dataset, dry_run=True, user=actor)
    report = SheetReport(
        counts={kind: count for kind, count in result.totals.items() if count},
        errors=sheet_errors(result, is_json=is_json, resource=type(handler)),
    )
    if report.errors or dry_run:
        return report
    # Validated again as it is applied: a rule activated meanwhile still refuses the sheet whole.
    result = handler.import_data(dataset, dry_run=False, user=actor)
    report.errors = sheet_errors(result, is_json=is_json, resource=type(handler))
    report.applied = not report.errors
    report.counts = {kind: count for kind, count in result.totals.items() if count}
    return report


def sheet_export(*, resource: str, path: str | Path) -> int:
    """Write every live row of the sheet to `path` in the format of its extension; return the row count."""
    handler = _resource(resource)
    fmt = format_for(str(path))
    dataset = handler.export()
    data = fmt.export_data(dataset)
    Path(path).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return len(dataset)
