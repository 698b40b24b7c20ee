"""TaskConfig rows in rule sheets (django-import-export)."""

from import_export import fields, resources

from apps.core.sheets import ChoiceWidget, SheetResourceMixin, TextWidget, WholeNumberWidget
from apps.tasks.models import TaskConfig


class TaskConfigResource(SheetResourceMixin, resources.ModelResource):
    task_type = fields.Field(attribute="task_type", column_name="task_type", widget=TextWidget())
    task_desc = fields.Field(attribute="task_desc", column_name="task_desc", widget=TextWidget())
    method = fields.Field(attribute="method", column_name="method", widget=ChoiceWidget(TaskConfig.Method.choices))
    interface_name = fields.Field(attribute="interface_name", column_name="interface_name", widget=TextWidget())
    id_group_name = fields.Field(attribute="id_group_name", column_name="id_group_name", widget=TextWidget())
    priority = fields.Field(attribute="priority", column_name="priority", widget=WholeNumberWidget())
    status = fields.Field(
        attribute="status", column_name="status", widget=ChoiceWidget(TaskConfig.Status.choices, default="editing")
    )
    reverses = fields.Field(attribute="reverses", column_name="reverses", widget=TextWidget())
    success_status_min = fields.Field(
        attribute="success_status_min", column_name="success_status_min", widget=WholeNumberWidget()
    )
    success_status_max = fields.Field(
        attribute="success_status_max", column_name="success_status_max", widget=WholeNumberWidget()
    )
    success_json_field = fields.Field(attribute="success_json_field", column_name="success_json_field", widget=TextWidget())
    success_json_value = fields.Field(attribute="success_json_value", column_name="success_json_value", widget=TextWidget())

    class Meta:
        model = TaskConfig
        fields = (
            "task_type",
            "task_desc",
            "method",
            "interface_name",
            "id_group_name",
            "priority",
            "status",
            "reverses",
            "success_status_min",
            "success_status_max",
            "success_json_field",
            "success_json_value",
        )
        import_id_fields = ("task_type",)
        clean_model_instances = True
        use_transactions = True
        skip_unchanged = True
        report_skipped = True

    def before_import_row(self, row, **kwargs):
        # Methods compare case-insensitively; store them upper-case. Empty numbers take the defaults.
        if row.get("method"):
            row["method"] = str(row["method"]).strip().upper()
        for column, default in (("priority", 0), ("success_status_min", 200), ("success_status_max", 299)):
            if column in row and (row[column] is None or str(row[column]).strip() == ""):
                row[column] = default
        super().before_import_row(row, **kwargs)
