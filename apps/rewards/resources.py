"""Reward items in sheets (django-import-export), as rules are: matched by `code`, all rows or none.

Point types are written by their code (an empty cell: the default type); the minimum level by its
name, with its point type's code beside it when two types have a level of that name (levels are
usually of a type that is never spent, like `exp`, while items cost a spendable one); the image
by its path in the site's media storage (an empty cell: none).
"""

from django.core.files.storage import default_storage
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from import_export import fields, resources

from apps.core.sheets import ChoiceWidget, MomentWidget, SheetResourceMixin, TextWidget, WholeNumberWidget
from apps.ledger.models import Level, PointType
from apps.ledger.point_types import point_type_by_code
from apps.rewards.models import RewardItem

LEVEL_TYPE_COLUMN = "min_level_type"


class PointTypeWidget(TextWidget):
    """A point type by its code; an empty cell is the default type."""

    def clean(self, value, row=None, **kwargs):
        code = super().clean(value, row, **kwargs)
        point_type = point_type_by_code(code)
        if point_type is None:
            codes = ", ".join(PointType.objects.values_list("code", flat=True))
            raise ValueError(_("No point type has the code %(code)r; use one of: %(codes)s") % {"code": code, "codes": codes})
        return point_type

    def render(self, value, obj=None, **kwargs):
        return super().render(value.code if value is not None else "", obj, **kwargs)


class LevelWidget(TextWidget):
    """A level by its name; the row's `min_level_type` says whose when several point types have one of that name."""

    def clean(self, value, row=None, **kwargs):
        name = super().clean(value, row, **kwargs)
        type_code = super().clean((row or {}).get(LEVEL_TYPE_COLUMN), row, **kwargs)
        if not name:
            return None
        levels = Level.objects.filter(name=name).select_related("point_type")
        if type_code:
            point_type = PointType.objects.filter(code=type_code).first()
            if point_type is None:
                raise ValueError(_("No point type has the code %(code)r.") % {"code": type_code})
            levels = levels.filter(point_type=point_type)
            if not levels:
                names = ", ".join(point_type.levels.values_list("name", flat=True)) or _("none")
                raise ValueError(
                    _("%(type)s has no level named %(name)r; its levels: %(names)s")
                    % {"type": point_type.code, "name": name, "names": names}
                )
        found = list(levels[:3])
        if not found:
            raise ValueError(_("No level is named %(name)r.") % {"name": name})
        if len(found) > 1:
            raise ValueError(
                _("Several point types have a level named %(name)r (%(types)s): say which in the column %(column)s.")
                % {
                    "name": name,
                    "types": ", ".join(level.point_type.code for level in found),
                    "column": RewardItemResource.column_labels()[LEVEL_TYPE_COLUMN],
                }
            )
        return found[0]

    def render(self, value, obj=None, **kwargs):
        return super().render(value.name if value is not None else "", obj, **kwargs)


class ImageWidget(TextWidget):
    """The image's path in the site's media storage (as the admin's upload stored it); empty: no image."""

    def clean(self, value, row=None, **kwargs):
        path = super().clean(value, row, **kwargs)
        if not path:
            return ""
        if path.startswith(("/", "\\")) or ".." in path.split("/") or "://" in path or "\\" in path:
            raise ValueError(
                _("%(path)r is not a path in the media storage (write it as the export does, e.g. rewards/mug.png).")
                % {"path": path}
            )
        if not default_storage.exists(path):
            raise ValueError(
                _("There is no file %(path)s in the media storage: upload the image on the item's page, or empty the cell.")
                % {"path": path}
            )
        return path

    def render(self, value, obj=None, **kwargs):
        return super().render(value.name if value else "", obj, **kwargs)


class RewardItemResource(SheetResourceMixin, resources.ModelResource):
    labels = {LEVEL_TYPE_COLUMN: gettext_lazy("minimum level's point type")}

    code = fields.Field(attribute="code", column_name="code", widget=TextWidget())
    name = fields.Field(attribute="name", column_name="name", widget=TextWidget())
    description = fields.Field(attribute="description", column_name="description", widget=TextWidget())
    cost = fields.Field(attribute="cost", column_name="cost", widget=WholeNumberWidget())
    point_type = fields.Field(attribute="point_type", column_name="point_type", widget=PointTypeWidget())
    stock = fields.Field(attribute="stock", column_name="stock", widget=WholeNumberWidget())
    per_user_limit = fields.Field(attribute="per_user_limit", column_name="per_user_limit", widget=WholeNumberWidget())
    limit_period = fields.Field(
        attribute="limit_period",
        column_name="limit_period",
        widget=ChoiceWidget(RewardItem.Period.choices, default=RewardItem.Period.NONE),
    )
    start_time = fields.Field(attribute="start_time", column_name="start_time", widget=MomentWidget())
    end_time = fields.Field(attribute="end_time", column_name="end_time", widget=MomentWidget())
    min_level = fields.Field(attribute="min_level", column_name="min_level", widget=LevelWidget())
    # Written on export, read by min_level on import: never saved by itself.
    min_level_type = fields.Field(
        attribute="min_level__point_type", column_name=LEVEL_TYPE_COLUMN, widget=PointTypeWidget(), readonly=True
    )
    position = fields.Field(attribute="position", column_name="position", widget=WholeNumberWidget())
    image = fields.Field(attribute="image", column_name="image", widget=ImageWidget())
    status = fields.Field(
        attribute="status",
        column_name="status",
        widget=ChoiceWidget(RewardItem.Status.choices, default=RewardItem.Status.EDITING),
    )

    class Meta:
        model = RewardItem
        fields = (
            "code",
            "name",
            "description",
            "cost",
            "point_type",
            "stock",
            "per_user_limit",
            "limit_period",
            "start_time",
            "end_time",
            "min_level",
            LEVEL_TYPE_COLUMN,
            "position",
            "image",
            "status",
        )
        import_id_fields = ("code",)
        clean_model_instances = True
        use_transactions = True
        skip_unchanged = True
        report_skipped = True

    def get_queryset(self):
        return RewardItem.objects.select_related("point_type", "min_level__point_type").order_by("position", "id")

    def before_import_row(self, row, **kwargs):
        # An empty position is the first place, as in the admin's form.
        if "position" in row and str(row["position"] or "").strip() == "":
            row["position"] = 0
        super().before_import_row(row, **kwargs)
